//! Charts as inline SVG, drawn with plotters' SVG backend. There is no font file: plotters
//! writes `<text>` elements (escaped) and the browser picks a sans-serif face.

use hdrhistogram::Histogram;
use plotters::coord::combinators::{BindKeyPoints, IntoLogRange};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::format;
use crate::results::SecondResults as Second;

const SIZE: (u32, u32) = (1000, 420);
const LABELS: (&str, u32) = ("sans-serif", 15);
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

pub type ChartResult = Result<String, String>;

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

fn err(e: impl std::fmt::Display) -> String {
    format!("drawing a chart: {e}")
}

/// Draws on a white SVG canvas of [`SIZE`] and returns the SVG.
fn render(
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> ChartResult {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Title, margins and room for the axis labels, the same on every chart.
fn frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .margin_right(36)
        .x_label_area_size(48)
        .y_label_area_size(84);
    builder
}

/// HdrHistogram's percentile plot: x is 1/(1-p) on a log axis, so p50, p90, p99 and p99.9
/// are equally spaced and the tail gets room; one line per histogram (in µs), y in ms.
pub fn percentile_curves(
    title: &str,
    series: &[(String, &Histogram<u64>)],
    log_y: bool,
) -> ChartResult {
    let series: Vec<(&String, Vec<(f64, f64)>)> = series
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(name, h)| (name, curve(h)))
        .collect();
    // Up to the next power of ten, so the axis ends on a labelled percentile.
    let x_last = series
        .iter()
        .flat_map(|(_, pts)| pts.last())
        .map(|p| p.0)
        .fold(10.0, f64::max);
    let x_max = 10f64.powf(x_last.log10().ceil());
    let (y_min, y_max) = y_range(
        series.iter().flat_map(|(_, pts)| pts.iter().map(|p| p.1)),
        log_y,
    );
    let ticks: Vec<f64> = [1.0, 2.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6]
        .into_iter()
        .filter(|&x| x <= x_max)
        .collect();
    let x_fmt = |x: &f64| format!("p{}", trim(100.0 * (1.0 - 1.0 / x)));
    let y_fmt = |y: &f64| format::ms(*y);
    render(|root| {
        let x = (1.0..x_max).log_scale().with_key_points(ticks);
        // The two y axes are different types, so the mesh is configured twice, alike.
        macro_rules! mesh {
            ($chart:expr) => {
                $chart
                    .configure_mesh()
                    .x_desc("percentile")
                    .y_desc("ms")
                    .label_style(LABELS)
                    .x_label_formatter(&x_fmt)
                    .y_label_formatter(&y_fmt)
                    .draw()
                    .map_err(err)
            };
        }
        if log_y {
            let mut chart = frame(root, title)
                .build_cartesian_2d(x, (y_min..y_max).log_scale())
                .map_err(err)?;
            mesh!(chart)?;
            // Lower right is empty on a log scale: by the tail every stage takes milliseconds.
            draw_lines(&mut chart, &series, SeriesLabelPosition::LowerRight)
        } else {
            let mut chart = frame(root, title)
                .build_cartesian_2d(x, y_min..y_max)
                .map_err(err)?;
            mesh!(chart)?;
            draw_lines(&mut chart, &series, SeriesLabelPosition::UpperLeft)
        }
    })
}

/// (1/(1-p), ms) on a log grid of p from 0 up to the last sample (1 - 1/n), then the max.
fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let x_last = (h.len() as f64).max(1.0);
    let steps = 120;
    let mut points: Vec<(f64, f64)> = (0..=steps)
        .map(|i| x_last.powf(i as f64 / steps as f64))
        .map(|x| (x, h.value_at_quantile(1.0 - 1.0 / x) as f64 / 1000.0))
        .collect();
    points.push((x_last, h.max() as f64 / 1000.0));
    points
}

/// "99.9" rather than "99.90000000000001".
fn trim(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn y_range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let hi = if hi > 0.0 { hi } else { 1.0 };
    // Headroom above the highest line for a legend at the top.
    if log {
        ((lo * 0.8).clamp(0.001, hi / 10.0), hi * 2.0)
    } else {
        (0.0, hi * 1.25)
    }
}

fn draw_lines<
    'a,
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    series: &[(&String, Vec<(f64, f64)>)],
    legend: SeriesLabelPosition,
) -> Result<(), String> {
    for (i, (name, points)) in series.iter().enumerate() {
        let style = color(i).stroke_width(2);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color(i).stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(legend)
        .label_font(LABELS)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(err)
}

/// Latency over time: p50 and p99 of the requests started in each second, with `bands`
/// (from s, to s, label) shaded behind them and labelled at their top left.
pub fn timeline(seconds: &[Second], bands: &[(f64, f64, String)]) -> ChartResult {
    let x_max = (seconds.len().max(1) as f64).max(bands.iter().map(|b| b.1).fold(0.0, f64::max));
    let (_, y_max) = y_range(seconds.iter().map(|s| s.p99_ms), false);
    let at = |s: &Second, ms: f64| (s.second as f64 + 0.5, ms);
    let p50 = seconds.iter().map(|s| at(s, s.p50_ms)).collect();
    let p99 = seconds.iter().map(|s| at(s, s.p99_ms)).collect();
    let (p50_name, p99_name) = ("p50".to_owned(), "p99".to_owned());
    render(|root| {
        let mut chart = frame(root, "Request latency over time")
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("second of the run")
            .y_desc("ms")
            .label_style(LABELS)
            .y_label_formatter(&|y| format::ms(*y))
            .draw()
            .map_err(err)?;
        shade(&mut chart, bands, y_max)?;
        draw_lines(
            &mut chart,
            &[(&p50_name, p50), (&p99_name, p99)],
            SeriesLabelPosition::UpperRight,
        )
    })
}

/// Translucent, outlined bands over the x ranges, each labelled with its text; overlapping bands
/// take turns at the label's height so their labels stay apart.
fn shade<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    bands: &[(f64, f64, String)],
    y_max: f64,
) -> Result<(), String> {
    let fill = RGBColor(214, 39, 40);
    for (i, (from, to, label)) in bands.iter().enumerate() {
        let rect = Rectangle::new([(*from, 0.0), (*to, y_max)], fill.mix(0.12).filled());
        // Outlined too, so that back-to-back windows stay two.
        let edge = Rectangle::new([(*from, 0.0), (*to, y_max)], fill.mix(0.5).stroke_width(1));
        let top = y_max * (0.97 - 0.06 * (i % 4) as f64);
        let text = Text::new(label.clone(), (*from, top), LABELS.into_font().color(&fill));
        chart.draw_series([rect, edge]).map_err(err)?;
        chart.draw_series([text]).map_err(err)?;
    }
    Ok(())
}

/// Integer x in hundredths of a group for bar charts: f64 axes cannot take custom tick labels.
const GROUP: i32 = 100;

/// Grouped bars: one group per label, one bar per series in each group.
pub fn bars(
    title: &str,
    y_desc: &str,
    groups: &[String],
    series: &[(String, Vec<f64>)],
    y_fmt: &dyn Fn(&f64) -> String,
) -> ChartResult {
    let n = groups.len().max(1) as i32;
    let (_, y_max) = y_range(series.iter().flat_map(|(_, v)| v.iter().copied()), false);
    let label = |x: &i32| {
        groups
            .get((x / GROUP) as usize)
            .cloned()
            .unwrap_or_default()
    };
    render(|root| {
        let x = (0..n * GROUP).with_key_points((0..n).map(|g| g * GROUP + GROUP / 2).collect());
        let mut chart = frame(root, title)
            .build_cartesian_2d(x, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .label_style(LABELS)
            .x_label_formatter(&label)
            .y_desc(y_desc)
            .y_label_formatter(y_fmt)
            .draw()
            .map_err(err)?;
        let width = GROUP * 8 / 10 / series.len().max(1) as i32;
        for (s, (name, values)) in series.iter().enumerate() {
            let left = |g: usize| g as i32 * GROUP + GROUP / 10 + s as i32 * width;
            let rects = values.iter().enumerate().map(|(g, &v)| {
                Rectangle::new(
                    [(left(g), 0.0), (left(g) + width - 2, v)],
                    color(s).filled(),
                )
            });
            let legend = move |(x, y): (i32, i32)| {
                Rectangle::new([(x, y - 5), (x + 12, y + 5)], color(s).filled())
            };
            chart
                .draw_series(rects)
                .map_err(err)?
                .label(name.as_str())
                .legend(legend);
        }
        let mut labels = chart.configure_series_labels();
        labels
            .position(SeriesLabelPosition::UpperRight)
            .label_font(LABELS)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::latency::empty_histogram;

    /// Whether the SVG has a `<text>` element with exactly this content.
    fn has_text(svg: &str, text: &str) -> bool {
        svg.contains(&format!(">\n{text}\n</text>"))
    }

    #[test]
    fn curves_are_svg_with_escaped_text_and_percentile_ticks() {
        let mut h = empty_histogram();
        (1..=1000u64).for_each(|v| h.record(v * 100).unwrap());
        let name = "<script>alert(1)</script>".to_owned();
        let svg = percentile_curves("LLM & <more>", &[(name, &h)], true).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;") && svg.contains("LLM &amp; &lt;more&gt;"));
        for tick in ["p0", "p50", "p90", "p99", "p99.9"] {
            assert!(has_text(&svg, tick), "{tick} missing");
        }
    }

    #[test]
    fn curve_runs_from_the_minimum_to_the_maximum() {
        let mut h = empty_histogram();
        (1..=100u64).for_each(|v| h.record(v * 1000).unwrap());
        let points = curve(&h);
        assert_eq!(points[0], (1.0, 1.0));
        let (x, y) = *points.last().unwrap();
        assert_eq!(x, 100.0);
        assert!((y - 100.0).abs() < 0.1, "{y}");
        assert!(points
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn timeline_shades_and_labels_fault_bands() {
        let seconds: Vec<Second> = Vec::new();
        let bands = vec![
            (1.0, 3.0, "eventsError".to_owned()),
            (2.0, 4.0, "llm<Error>".to_owned()),
        ];
        let svg = timeline(&seconds, &bands).unwrap();
        assert!(has_text(&svg, "eventsError"), "{svg}");
        assert!(has_text(&svg, "llm&lt;Error&gt;"));
        assert!(svg.matches("opacity=\"0.12\"").count() >= 2, "{svg}");
    }

    #[test]
    fn bars_label_every_group() {
        let groups = vec!["premium-a".to_owned(), "premium-b".to_owned()];
        let series = vec![
            ("expected".to_owned(), vec![60.0, 40.0]),
            ("observed".to_owned(), vec![59.5, 40.5]),
        ];
        let svg = bars("split", "%", &groups, &series, &|y| format!("{y:.0}")).unwrap();
        assert!(["premium-a", "premium-b", "observed"]
            .iter()
            .all(|t| has_text(&svg, t)));
        assert!(svg.matches("<rect").count() >= 4);
    }
}

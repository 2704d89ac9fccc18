//! `report.html`: one self-contained page. Styles are inline, charts are inline SVG, and a
//! Content-Security-Policy forbids every fetch, so the file opens the same offline, as a
//! CI artifact or attached to a ticket.

use super::markup::esc;
use super::{cost_section, rollout_section, sections};
use crate::results::RunResults;

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:24px;color:#1d2330;background:#fafbfc}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:36px 0 10px;padding-bottom:6px;border-bottom:2px solid #d8dde6}
h3{font-size:17px;margin:24px 0 8px}h4{font-size:15px;margin:16px 0 6px;color:#2b3447}p.lead{color:#4a5468;margin:0 0 16px}p.note{color:#4a5468;font-size:14px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}.card{background:#fff;border:1px solid #d8dde6;border-radius:8px;padding:10px 14px;min-width:140px}
.card b{display:block;font-size:20px}.card span{color:#4a5468;font-size:13px}
table{border-collapse:collapse;background:#fff;margin:8px 0 16px;font-size:14px}th,td{border:1px solid #d8dde6;padding:5px 9px;text-align:left;vertical-align:top}
th{background:#eef1f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.pass{color:#146c2e;font-weight:600}td.warn{color:#8a5300;font-weight:600}td.fail{color:#b42318;font-weight:700;background:#fdecea}
figure{margin:12px 0 20px;background:#fff;border:1px solid #d8dde6;border-radius:8px;padding:6px}figure svg{width:100%;height:auto;display:block}
.banner{padding:10px 14px;border-radius:8px;font-weight:600;margin:12px 0}.banner.pass{background:#e6f4ea;color:#146c2e}.banner.fail{background:#fdecea;color:#b42318}.banner.warn{background:#fff4e0;color:#8a5300}
";

/// The whole page.
pub fn render(r: &RunResults) -> Result<String, String> {
    let title = format!("aiconfig-harness report: {}", r.scenario.name);
    let body = [
        sections::header(r),
        sections::observability(r)?,
        sections::alert_rules(r),
        cost_section::render(r)?,
        sections::baselines(r)?,
        rollout_section::render(r)?,
        sections::propagation(r),
        sections::resilience(r),
        sections::load_generator(r),
    ]
    .concat();
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        esc(&title)
    ))
}

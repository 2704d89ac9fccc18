//! Tables rendered as aligned text (terminal, CI logs) or as GitHub Markdown.

/// A header row and rows of cells; text cells are escaped by each renderer.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push<S: Into<String>>(&mut self, row: impl IntoIterator<Item = S>) {
        self.rows.push(row.into_iter().map(Into::into).collect());
    }

    /// Columns padded to their widest cell; the first column left-aligned, the rest too,
    /// since cells mix numbers and words.
    pub fn text(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| {
                self.all_rows()
                    .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in self.all_rows() {
            let line: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(i, w)| format!("{:<w$}", row.get(i).map_or("", String::as_str)))
                .collect();
            out += line.join("  ").trim_end();
            out.push('\n');
        }
        out
    }

    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| {
            format!(
                "| {} |\n",
                cells
                    .iter()
                    .map(|c| markdown_cell(c))
                    .collect::<Vec<_>>()
                    .join(" | ")
            )
        };
        let mut out = line(&self.headers);
        out += &format!("|{}\n", "---|".repeat(self.headers.len()));
        for row in &self.rows {
            out += &line(row);
        }
        out
    }

    fn all_rows(&self) -> impl Iterator<Item = &Vec<String>> {
        std::iter::once(&self.headers).chain(&self.rows)
    }
}

/// Text that cannot break a Markdown table or inject markup: pipes, HTML and newlines.
pub fn markdown_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_aligns_and_markdown_escapes() {
        let mut t = Table::new(["metric", "p50"]);
        t.push(["llm", "35.2"]);
        t.push(["a|b<c>", "1"]);
        assert_eq!(t.text(), "metric  p50\nllm     35.2\na|b<c>  1\n");
        assert_eq!(
            t.markdown(),
            "| metric | p50 |\n|---|---|\n| llm | 35.2 |\n| a\\|b&lt;c&gt; | 1 |\n"
        );
    }
}

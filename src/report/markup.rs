//! The building blocks of `report.html`, below every section that uses them and the page
//! that puts the sections together: escaping, a section, a figure, a note and a table.

use super::table::Table;

/// Text made safe for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn section(id: &str, title: &str, body: &str) -> String {
    format!(
        "<section id=\"{}\">\n<h2>{}</h2>\n{body}</section>\n",
        esc(id),
        esc(title)
    )
}

pub fn figure(svg: &str, caption: &str) -> String {
    format!(
        "<figure>{svg}<figcaption class=\"note\">{}</figcaption></figure>\n",
        esc(caption)
    )
}

pub fn note(text: &str) -> String {
    format!("<p class=\"note\">{}</p>\n", esc(text))
}

/// Every cell escaped; numbers right-aligned, verdict words coloured.
pub fn table(t: &Table) -> String {
    let mut out = String::from("<table>\n<thead><tr>");
    for h in &t.headers {
        out += &format!("<th>{}</th>", esc(h));
    }
    out += "</tr></thead>\n<tbody>\n";
    for row in &t.rows {
        out += "<tr>";
        for cell in row {
            out += &format!("<td{}>{}</td>", class(cell), esc(cell));
        }
        out += "</tr>\n";
    }
    out + "</tbody>\n</table>\n"
}

fn class(cell: &str) -> &'static str {
    let numeric = cell.starts_with(|c: char| c.is_ascii_digit() || c == '$' || c == '-')
        && !cell.contains(char::is_alphabetic);
    match cell {
        "pass" | "ok" | "improved" => " class=\"pass\"",
        "inconclusive" | "INCONCLUSIVE" => " class=\"warn\"",
        "FAIL" | "REGRESSED" => " class=\"fail\"",
        _ if numeric => " class=\"num\"",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere() {
        assert_eq!(
            esc("<a href='x'>\"&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;"
        );
        let mut t = Table::new(["<th>"]);
        t.push(["<script>"]);
        t.push(["FAIL"]);
        let html = table(&t);
        assert!(html.contains("<th>&lt;th&gt;</th>") && html.contains("<td>&lt;script&gt;</td>"));
        assert!(html.contains("<td class=\"fail\">FAIL</td>"));
    }
}

//! Charts drawn as SVG on the server: horizontal bars with an optional target mark. No script,
//! no styles outside the attributes the content security policy allows.

/// One bar: a label, a value, and where it should be.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub target: Option<f64>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Horizontal bars scaled to `max`; values as percentages when `percent`. A target shows as a
/// dark mark across its bar.
pub fn bars(rows: &[Bar], max: f64, percent: bool, empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"muted\">{}</p>", escape(empty));
    }
    let (label_width, bar_width, row_height) = (170.0, 260.0, 26.0);
    let width = label_width + bar_width + 70.0;
    let height = row_height * rows.len() as f64 + 8.0;
    let show = |value: f64| {
        if percent {
            format!("{:.0}%", value * 100.0)
        } else {
            format!("{value:.1}")
        }
    };
    let mut svg = format!(
        "<svg role=\"img\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" preserveAspectRatio=\"xMinYMin meet\"><title>{}</title>",
        escape(
            &rows
                .iter()
                .map(|row| format!("{}: {}", row.label, show(row.value)))
                .collect::<Vec<_>>()
                .join("; ")
        )
    );
    let scale = |value: f64| (value / max.max(f64::EPSILON)).clamp(0.0, 1.0) * bar_width;
    for (index, row) in rows.iter().enumerate() {
        let y = 4.0 + row_height * index as f64;
        let label: String = row.label.chars().take(24).collect();
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{:.1}\">{}</text><rect x=\"{label_width}\" y=\"{:.1}\" width=\"{:.1}\" height=\"16\" fill=\"#1f6feb\" rx=\"2\"></rect><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            y + 13.0,
            escape(&label),
            y + 1.0,
            scale(row.value),
            label_width + scale(row.value) + 6.0,
            y + 13.0,
            escape(&show(row.value)),
        ));
        if let Some(target) = row.target {
            svg.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"3\" height=\"20\" fill=\"#1d2530\"><title>{}</title></rect>",
                label_width + scale(target) - 1.5,
                y - 1.0,
                escape(&show(target)),
            ));
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_targets_marked() {
        let svg = bars(
            &[Bar {
                label: "<script>".into(),
                value: 0.5,
                target: Some(0.25),
            }],
            1.0,
            true,
            "none",
        );
        assert!(svg.contains("&lt;script&gt;"));
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("50%"));
        assert!(svg.contains("<title>25%</title>"));
        assert_eq!(bars(&[], 1.0, true, "none"), "<p class=\"muted\">none</p>");
    }
}

//! Charts drawn as SVG on the server: horizontal bars with an optional target mark. No script,
//! no styles outside the attributes the content security policy allows.

/// One bar: a label, a value, and where it should be.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub target: Option<f64>,
}

pub(super) fn escape(text: &str) -> String {
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

/// A square plot of `points` (0–1 on both axes) as a line over the diagonal: the ROC curve.
pub fn curve(points: &[(f64, f64)], title: &str, x_label: &str, y_label: &str) -> String {
    let (size, margin) = (220.0, 34.0);
    let at = |x: f64, y: f64| (margin + x * size, margin / 2.0 + (1.0 - y) * size);
    let path: Vec<String> = points
        .iter()
        .map(|(x, y)| {
            let (px, py) = at(*x, *y);
            format!("{px:.1},{py:.1}")
        })
        .collect();
    let (x0, y0) = at(0.0, 0.0);
    let (x1, y1) = at(1.0, 1.0);
    let total = size + margin * 1.5;
    format!(
        "<svg role=\"img\" viewBox=\"0 0 {total} {total}\" width=\"{total}\" height=\"{total}\"><title>{}</title>\
<rect x=\"{x0}\" y=\"{y1}\" width=\"{size}\" height=\"{size}\" fill=\"none\" stroke=\"#bbb\"/>\
<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y1}\" stroke=\"#bbb\" stroke-dasharray=\"4 4\"/>\
<polyline points=\"{}\" fill=\"none\" stroke=\"#2563eb\" stroke-width=\"2\"/>\
<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>\
<text x=\"10\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" transform=\"rotate(-90 10 {})\">{}</text></svg>",
        escape(title),
        path.join(" "),
        margin + size / 2.0,
        total - 4.0,
        escape(x_label),
        margin / 2.0 + size / 2.0,
        margin / 2.0 + size / 2.0,
        escape(y_label),
    )
}

/// Predicted against observed rates, one dot per bin, over the diagonal a calibrated model
/// sits on.
pub fn calibration(bins: &[(f64, f64)], title: &str, x_label: &str, y_label: &str) -> String {
    let dots: Vec<(f64, f64)> = bins.to_vec();
    let mut svg = curve(&dots, title, x_label, y_label);
    let (size, margin) = (220.0, 34.0);
    let marks: String = bins
        .iter()
        .map(|(x, y)| {
            format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#2563eb\"/>",
                margin + x * size,
                margin / 2.0 + (1.0 - y) * size
            )
        })
        .collect();
    svg.insert_str(svg.len() - "</svg>".len(), &marks);
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

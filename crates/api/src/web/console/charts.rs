//! The regulator's charts, drawn on the server as SVG bars (plotters' SVG backend; its text is left
//! to the browser's fonts), so that no chart script is needed. Each chart comes with its data as a
//! table, which is what a screen reader reads (the picture is hidden from it), and a period without
//! data shows a sentence, not an empty frame.

use plotters::prelude::*;
use store::ReportSeries;

use super::super::Lang;

/// Width and height of a chart's drawing, in SVG units (it scales to the page's width).
const SIZE: (u32, u32) = (420, 250);
/// The brand's blue, as the stylesheet's `--brand`.
const BAR: RGBColor = RGBColor(0x0b, 0x53, 0x94);
const INK: RGBColor = RGBColor(0x1a, 0x1a, 0x1a);
const LINE: RGBColor = RGBColor(0xc8, 0xc8, 0xc8);
/// Labels on the horizontal axis at most; the rest are in the table.
const X_LABELS_MAX: usize = 8;

/// A chart and its data.
pub struct Chart {
    pub id: &'static str,
    pub title: String,
    /// What the chart shows, in a sentence.
    pub intro: String,
    /// The drawing, unless there is nothing to draw.
    pub svg: Option<String>,
    /// Said instead of the drawing when there is nothing to draw.
    pub empty: String,
    /// The table's two column headings, and its rows.
    pub columns: (String, String),
    pub rows: Vec<(String, u64)>,
}

/// Vertical bars of `values`, one per (short) label, with `x_desc` and `y_desc` on the axes.
fn bars(labels: &[String], values: &[u64], x_desc: &str, y_desc: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let top = values.iter().copied().max().unwrap_or(0).max(1);
        let top = top + top.div_ceil(10);
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(44)
            .y_label_area_size(52)
            .build_cartesian_2d((0..labels.len()).into_segmented(), 0u64..top)
            .map_err(|e| e.to_string())?;
        let step = labels.len().div_ceil(X_LABELS_MAX).max(1);
        let label_of = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) if i % step == 0 => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .bold_line_style(LINE)
            .light_line_style(TRANSPARENT)
            .axis_style(INK)
            .x_labels(labels.len())
            .x_label_formatter(&label_of)
            .y_labels(5)
            .y_label_formatter(&|v| v.to_string())
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style(("sans-serif", 17).into_font().color(&INK))
            .axis_desc_style(("sans-serif", 17).into_font().color(&INK))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(BAR.filled())
                    .margin(6)
                    .data(values.iter().enumerate().map(|(i, v)| (i, *v))),
            )
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A chart of `rows`, drawn unless every value is 0 (or the drawing fails, which is logged); `axis`
/// are the rows' short labels under the bars, and `x_desc` what they count in.
fn chart(
    id: &'static str,
    lang: Lang,
    key: &str,
    columns: (String, String),
    rows: Vec<(String, u64)>,
    axis: (Vec<String>, String),
) -> Chart {
    let values: Vec<u64> = rows.iter().map(|r| r.1).collect();
    let svg = if values.iter().all(|v| *v == 0) {
        None
    } else {
        bars(&axis.0, &values, &axis.1, &columns.1)
            .inspect_err(|e| tracing::error!(chart = id, error = %e, "a chart could not be drawn"))
            .ok()
    };
    Chart {
        id,
        title: lang.t(&format!("{key}-title")),
        intro: lang.t(&format!("{key}-intro")),
        svg,
        empty: lang.t(&format!("{key}-empty")),
        columns,
        rows,
    }
}

/// Bars of time to answer, by the days it took: under 1, 1–2, 2–3, 3–5, 5–7, 7–14, 14 or more.
pub fn resolve_times(lang: Lang, series: &ReportSeries) -> Chart {
    const EDGES: [i64; 6] = [1, 2, 3, 5, 7, 14];
    let mut counts = [0u64; 7];
    for s in &series.resolve_secs {
        let days = s.max(&0) / 86_400;
        counts[EDGES.iter().take_while(|e| days >= **e).count()] += 1;
    }
    let names: Vec<String> = (0..7)
        .map(|i| match i {
            0 => lang.t_args("chart-days-under", &[("n", "1")]),
            6 => lang.t_args("chart-days-over", &[("n", "14")]),
            i => lang.t_args("chart-days-range", &[("a", &EDGES[i - 1].to_string()), ("b", &EDGES[i].to_string())]),
        })
        .collect();
    let columns = (lang.t("chart-resolve-col"), lang.t("chart-requests"));
    let rows = names.into_iter().zip(counts).collect();
    let axis = ["<1", "1–2", "2–3", "3–5", "5–7", "7–14", "≥14"].map(String::from).to_vec();
    chart("chart-resolve", lang, "chart-resolve", columns, rows, (axis, lang.t("chart-axis-days")))
}

/// Bars of the requests overdue at the end of each week.
pub fn overdue_by_week(lang: Lang, series: &ReportSeries) -> Chart {
    let axis: Vec<String> =
        series.overdue_by_week.iter().map(|(d, _)| format!("{:02}-{:02}", d.date().month(), d.date().day())).collect();
    let rows = series.overdue_by_week.iter().map(|(d, n)| (lang.day(*d), *n)).collect();
    let columns = (lang.t("chart-overdue-col"), lang.t("chart-requests"));
    chart("chart-overdue", lang, "chart-overdue", columns, rows, (axis, lang.t("chart-axis-week")))
}

/// Bars of binding notifications by the days their acknowledgement took, and those still waiting.
pub fn ack_latency(lang: Lang, series: &ReportSeries) -> Chart {
    // Same day, 1, 2, 3–5, 6–10, more than 10 days, not yet.
    let mut counts = [0u64; 7];
    for (days, n) in &series.ack_days {
        let i = match days {
            Some(d) if *d <= 0 => 0,
            Some(1) => 1,
            Some(2) => 2,
            Some(3..=5) => 3,
            Some(6..=10) => 4,
            Some(_) => 5,
            None => 6,
        };
        counts[i] += n;
    }
    let names: Vec<String> = [
        lang.t("chart-ack-same-day"),
        lang.t_args("chart-ack-days", &[("n", "1")]),
        lang.t_args("chart-ack-days", &[("n", "2")]),
        lang.t_args("chart-days-range", &[("a", "3"), ("b", "5")]),
        lang.t_args("chart-days-range", &[("a", "6"), ("b", "10")]),
        lang.t_args("chart-days-more", &[("n", "10")]),
        lang.t("chart-ack-not-yet"),
    ]
    .into();
    let columns = (lang.t("chart-ack-col"), lang.t("chart-notifications"));
    let rows = names.into_iter().zip(counts).collect();
    let mut axis = ["0", "1", "2", "3–5", "6–10", ">10"].map(String::from).to_vec();
    axis.push(lang.t("chart-ack-not-yet"));
    chart("chart-ack", lang, "chart-ack", columns, rows, (axis, lang.t("chart-axis-days")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> domain::Day {
        domain::Day::parse(s).unwrap()
    }

    /// The bars count what the table says, an empty period draws nothing, and the drawing is plain
    /// SVG: no script, no style attribute (the page's CSP allows neither), nothing fetched.
    #[test]
    fn charts_count_into_their_buckets_and_draw_plain_svg() {
        let series = ReportSeries {
            resolve_secs: vec![0, 3_600, 86_400, 2 * 86_400 + 1, 4 * 86_400, 6 * 86_400, 10 * 86_400, 30 * 86_400],
            overdue_by_week: vec![(day("2026-11-22"), 0), (day("2026-11-29"), 3), (day("2026-12-06"), 1)],
            ack_days: vec![(Some(0), 5), (Some(1), 2), (Some(4), 1), (Some(12), 1), (None, 3)],
        };
        let r = resolve_times(Lang::En, &series);
        assert_eq!(r.rows.iter().map(|r| r.1).collect::<Vec<_>>(), [2, 1, 1, 1, 1, 1, 1]);
        assert_eq!(r.rows[0].0, "under 1 day");
        let a = ack_latency(Lang::En, &series);
        assert_eq!(a.rows.iter().map(|r| r.1).collect::<Vec<_>>(), [5, 2, 0, 1, 0, 1, 3]);
        let o = overdue_by_week(Lang::ZhCn, &series);
        assert_eq!(o.rows.iter().map(|r| r.1).collect::<Vec<_>>(), [0, 3, 1]);
        for c in [&r, &a, &o] {
            let svg = c.svg.as_deref().expect("drawn");
            assert!(svg.starts_with("<svg") && svg.contains("viewBox"), "{}", &svg[..200]);
            for banned in ["<script", "style=", "href=", "url("] {
                assert!(!svg.contains(banned), "{banned} in {}", c.id);
            }
        }
        assert!(o.svg.as_deref().unwrap().contains("11-29"), "the weeks are labelled");
        let empty = ReportSeries { overdue_by_week: vec![(day("2026-12-06"), 0)], ..ReportSeries::default() };
        for c in [resolve_times(Lang::En, &empty), overdue_by_week(Lang::En, &empty), ack_latency(Lang::En, &empty)] {
            assert!(c.svg.is_none(), "{}: nothing to draw", c.id);
        }
    }
}

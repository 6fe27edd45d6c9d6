//! Charts as SVG strings. Text stays in HTML next to them, so the server and the browser show
//! the same pixels (their font metrics differ). The run charts are drawn with plotters on the
//! server only (the first paint, and each live update before it is sent); the browser's build
//! carries no chart library, only the coverage bar's three rectangles.

#[cfg(feature = "ssr")]
use crate::domain::format::{clock_ms, fixed};
#[cfg(feature = "ssr")]
use crate::domain::live::{ChartMark, ChartPoint, DrawnCharts, LiveView};
use crate::domain::overview::TableCounts;
#[cfg(feature = "ssr")]
use plotters::prelude::*;
#[cfg(feature = "ssr")]
use plotters::style::text_anchor;

/// Colours shared with `style/main.css` (`--school`, `--self-study`, `--remaining`).
const SCHOOL_HEX: &str = "#2563EB";
const SELF_STUDY_HEX: &str = "#0D9488";
const REMAINING_HEX: &str = "#E2E8F0";
#[cfg(feature = "ssr")]
const SCHOOL: RGBColor = RGBColor(0x25, 0x63, 0xEB);
#[cfg(feature = "ssr")]
const SELF_STUDY: RGBColor = RGBColor(0x0D, 0x94, 0x88);

const WIDTH: i64 = 600;
const HEIGHT: i64 = 16;

/// A horizontal bar splitting the legacy rows into school rows, self-study rows and rows not
/// split yet.
pub fn coverage_bar(counts: &TableCounts) -> String {
    let rect = |from: i64, to: i64, colour: &str| {
        format!(r#"<rect x="{from}" y="0" width="{}" height="{HEIGHT}" fill="{colour}"/>"#, to - from)
    };
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">"#
    );
    svg.push_str(&rect(0, WIDTH, REMAINING_HEX));
    if counts.legacy > 0 {
        let width = |rows: i64| (rows.clamp(0, counts.legacy) * WIDTH + counts.legacy / 2) / counts.legacy;
        let school_end = width(counts.school);
        let self_study_end = (school_end + width(counts.self_study)).min(WIDTH);
        for (from, to, colour) in [(0, school_end, SCHOOL_HEX), (school_end, self_study_end, SELF_STUDY_HEX)]
        {
            if to > from {
                svg.push_str(&rect(from, to, colour));
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The run's three charts of `live`, drawn (server only): in wall-clock time from its start,
/// with its marks.
#[cfg(feature = "ssr")]
pub fn draw(live: &LiveView) -> DrawnCharts {
    let run = Timed { started_at: live.run.as_ref().map_or(0, |r| r.created_at), marks: &live.marks };
    DrawnCharts {
        rows: run_chart(RunChart::Cumulative, &live.chart, &run),
        throughput: run_chart(RunChart::Throughput, &live.chart, &run),
        duration: run_chart(RunChart::ChunkDuration, &live.chart, &run),
    }
}

/// What puts a run's points in wall-clock time: when it started, and what happened to it.
#[cfg(feature = "ssr")]
pub struct Timed<'a> {
    pub started_at: i64,
    pub marks: &'a [ChartMark],
}

#[cfg(feature = "ssr")]
/// Which of a run's charts to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunChart {
    /// Rows created so far, one line per study type.
    Cumulative,
    /// Rows read per second.
    Throughput,
    /// Mean chunk duration in milliseconds.
    ChunkDuration,
}

#[cfg(feature = "ssr")]
/// The cumulative chart is the wide one; the other two sit side by side under it.
pub fn chart_size(chart: RunChart) -> (u32, u32) {
    match chart {
        RunChart::Cumulative => (1000, 280),
        RunChart::Throughput | RunChart::ChunkDuration => (440, 230),
    }
}
#[cfg(feature = "ssr")]
const AXIS: RGBColor = RGBColor(100, 116, 139);
#[cfg(feature = "ssr")]
const GRID: RGBColor = RGBColor(226, 232, 240);
#[cfg(feature = "ssr")]
const LINE: RGBColor = RGBColor(79, 70, 229);
/// The marks' colour: what happened to the run (amber, as a notice).
#[cfg(feature = "ssr")]
const MARK: RGBColor = RGBColor(0xB4, 0x53, 0x09);

#[cfg(feature = "ssr")]
/// `1 234 567` → `1.2M`, for axis labels.
pub fn short_count(value: f64) -> String {
    let a = value.abs();
    if a >= 1_000_000.0 {
        format!("{}M", fixed(value / 1_000_000.0, 1))
    } else if a >= 10_000.0 {
        format!("{}k", fixed(value / 1_000.0, 0))
    } else if a >= 1_000.0 {
        format!("{}k", fixed(value / 1_000.0, 1))
    } else {
        fixed(value, 0)
    }
}

#[cfg(feature = "ssr")]
/// One of a run's charts as SVG, the same function on the server (first paint) and in the
/// browser (live updates). Empty when there is nothing to draw or plotters fails.
pub fn run_chart(chart: RunChart, points: &[ChartPoint], run: &Timed) -> String {
    let mut svg = String::new();
    if points.is_empty() || draw_run_chart(&mut svg, chart, points, run).is_err() {
        svg.clear();
    }
    svg
}

#[cfg(feature = "ssr")]
fn draw_run_chart(
    svg: &mut String,
    chart: RunChart,
    points: &[ChartPoint],
    run: &Timed,
) -> Result<(), String> {
    let root = SVGBackend::with_string(svg, chart_size(chart)).into_drawing_area();
    let failed = |e: DrawingAreaErrorKind<_>| e.to_string();
    root.fill(&WHITE).map_err(failed)?;
    let x_max = points
        .iter()
        .map(|p| p.seconds)
        .chain(run.marks.iter().map(|m| m.seconds))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let series: Vec<(RGBColor, Vec<(f64, f64)>)> = match chart {
        RunChart::Cumulative => vec![
            (SCHOOL, points.iter().map(|p| (p.seconds, p.school as f64)).collect()),
            (SELF_STUDY, points.iter().map(|p| (p.seconds, p.self_study as f64)).collect()),
        ],
        RunChart::Throughput => vec![(LINE, points.iter().map(|p| (p.seconds, p.rows_per_second)).collect())],
        RunChart::ChunkDuration => vec![(LINE, points.iter().map(|p| (p.seconds, p.chunk_ms)).collect())],
    };
    let y_max =
        series.iter().flat_map(|(_, s)| s.iter().map(|(_, y)| *y)).fold(0.0_f64, f64::max).max(1.0) * 1.1;
    let y_desc = match chart {
        RunChart::Cumulative => "rows",
        RunChart::Throughput => "rows / s",
        RunChart::ChunkDuration => "ms per chunk",
    };
    // plotters draws text at size / 1.24: 17 gives labels of about 13.7 px at the chart's own size
    let label_style = ("sans-serif", 17).into_font().color(&AXIS);
    let mut ctx = ChartBuilder::on(&root)
        .margin(10)
        .x_label_area_size(38)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(failed)?;
    ctx.configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .axis_style(AXIS)
        .x_labels(6)
        .y_labels(5)
        .x_desc("time (UTC)")
        .y_desc(y_desc)
        .label_style(label_style.clone())
        .axis_desc_style(label_style)
        .x_label_formatter(&|x| clock_ms(run.started_at + (*x * 1000.0).round() as i64))
        .y_label_formatter(&|y| short_count(*y))
        .draw()
        .map_err(failed)?;
    // a line is broken where nothing ran for a while, not drawn straight across the gap
    let mut starts: Vec<usize> =
        points.iter().enumerate().filter(|(_, p)| p.gap_before).map(|(i, _)| i).collect();
    starts.retain(|i| *i > 0);
    for (colour, line) in series {
        let mut from = 0;
        for to in starts.iter().copied().chain(std::iter::once(line.len())) {
            let segment = &line[from..to];
            from = to;
            if chart == RunChart::Cumulative {
                ctx.draw_series(LineSeries::new(segment.iter().copied(), colour.stroke_width(2)))
                    .map_err(failed)?;
            } else {
                ctx.draw_series(
                    AreaSeries::new(segment.iter().copied(), 0.0, colour.mix(0.12))
                        .border_style(colour.stroke_width(2)),
                )
                .map_err(failed)?;
            }
        }
    }
    // what happened to the run, at its time: a thin line and its word at the top
    let mark_style = ("sans-serif", 15).into_font().color(&MARK);
    // the plot's width in pixels (the chart less its label area and margins), to keep words apart
    let plot_px = f64::from(chart_size(chart).0) - 64.0 - 20.0;
    let px = |seconds: f64| seconds / x_max * plot_px;
    let shown: Vec<&ChartMark> = run.marks.iter().rev().take(12).rev().collect();
    // a word takes about 8 px a letter: one that would run off the chart ends at its line, and
    // a word too close to the one before goes a row lower
    let (mut previous_end, mut row) = (f64::MIN, 0);
    for mark in shown {
        ctx.draw_series(std::iter::once(PathElement::new(
            vec![(mark.seconds, 0.0), (mark.seconds, y_max)],
            MARK.mix(0.6).stroke_width(1),
        )))
        .map_err(failed)?;
        let width = mark.label.chars().count() as f64 * 8.0;
        let at = px(mark.seconds);
        let right = at + width > plot_px;
        let (start, end) = if right { (at - width, at) } else { (at, at + width) };
        row = if start < previous_end + 6.0 { (row + 1) % 3 } else { 0 };
        previous_end = end;
        let style = match right {
            true => mark_style
                .clone()
                .pos(text_anchor::Pos::new(text_anchor::HPos::Right, text_anchor::VPos::Top)),
            false => mark_style.clone(),
        };
        let y = y_max * (0.97 - 0.09 * f64::from(row));
        ctx.draw_series(std::iter::once(Text::new(mark.label.clone(), (mark.seconds, y), style)))
            .map_err(failed)?;
    }
    root.present().map_err(failed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untouched_environment_is_one_grey_bar() {
        let svg = coverage_bar(&TableCounts { legacy: 10, school: 0, self_study: 0 });
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("viewBox=\"0 0 600 16\""));
        assert!(!svg.contains("#2563EB"), "no school segment expected: {svg}");
    }

    fn points(n: usize) -> Vec<ChartPoint> {
        (1..=n)
            .map(|i| ChartPoint {
                seconds: i as f64,
                school: 500 * i as i64,
                self_study: 400 * i as i64,
                rows_per_second: 1000.0,
                chunk_ms: 12.5,
                gap_before: i == 20,
            })
            .collect()
    }

    const UNTIMED: Timed = Timed { started_at: 0, marks: &[] };

    #[test]
    fn run_charts_have_axes_with_units_and_one_line_per_series() {
        let cumulative = run_chart(RunChart::Cumulative, &points(30), &UNTIMED);
        assert!(cumulative.starts_with("<svg") && cumulative.contains("time (UTC)"));
        assert!(cumulative.contains("\nrows\n"), "the y axis says what it counts");
        assert!(cumulative.contains("#2563EB") && cumulative.contains("#0D9488"), "a line per study type");
        assert!(cumulative.contains("15.0k") || cumulative.contains("15k"), "labels are short counts");
        let throughput = run_chart(RunChart::Throughput, &points(30), &UNTIMED);
        assert!(throughput.contains("rows / s"));
        assert!(run_chart(RunChart::ChunkDuration, &points(3), &UNTIMED).contains("ms per chunk"));
        assert_eq!(
            run_chart(RunChart::Throughput, &[], &UNTIMED),
            "",
            "nothing to draw before the first chunk"
        );
    }

    #[test]
    fn run_charts_are_in_wall_clock_time_with_marks_and_gaps() {
        let marks = [ChartMark { seconds: 12.0, label: "paused".into() }];
        // started at 14:02:00 UTC
        let run = Timed { started_at: 1_796_738_520_000, marks: &marks };
        let svg = run_chart(RunChart::Cumulative, &points(30), &run);
        assert!(svg.contains("14:02:"), "clock labels: {svg}");
        assert!(svg.contains(">paused<") || svg.contains("paused"), "the mark's word");
        // a gap before point 20: each study type's line is two polylines, not one
        let lines = |colour: &str| svg.matches(&format!("stroke=\"{colour}\" stroke-width=\"2\"")).count();
        assert_eq!((lines("#2563EB"), lines("#0D9488")), (2, 2), "{svg}");
        assert_eq!(svg.matches("stroke=\"#B45309\"").count(), 1, "one mark's line");
    }

    #[test]
    fn axis_counts_are_short() {
        assert_eq!(short_count(950.0), "950");
        assert_eq!(short_count(1_500.0), "1.5k");
        assert_eq!(short_count(250_000.0), "250k");
        assert_eq!(short_count(1_250_000.0), "1.2M");
    }

    #[test]
    fn school_and_self_study_segments_are_proportional() {
        let svg = coverage_bar(&TableCounts { legacy: 4, school: 2, self_study: 1 });
        assert!(svg.contains("#2563EB") && svg.contains("#0D9488"), "{svg}");
        assert!(svg.contains("width=\"300\"") && svg.contains("width=\"150\""), "{svg}");
    }
}

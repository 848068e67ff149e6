//! The SVG chart of `bench partitioners`: small multiples, one row per
//! scenario and one panel per figure (throughput, ack p99, mean batch, CPU
//! per million messages: a bar per plugin at its median, with a min–max
//! error bar), then messages per partition as grouped bars (a group per
//! partition, a bar per plugin). One colour per plugin, named in the legend.
//! Draws only; never runs or aggregates beyond the medians.

use super::rounds::Evaluation;
use super::stats::{Figure, Spread, Summary};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

const PANEL_WIDTH_PX: u32 = 330;
const PANEL_HEIGHT_PX: u32 = 240;
const LEGEND_HEIGHT_PX: u32 = 40;
/// The figure panels of each row (messages per partition comes after them).
const FIGURES: [Figure; 4] = [
    Figure::MsgsPerSec,
    Figure::AckP99Ms,
    Figure::MeanBatchRecords,
    Figure::CpuMsPerMillion,
];

type Failure = Box<dyn std::error::Error>;

/// A number for an axis or a bar: 900000 as "900k", 1500000 as "1.5M".
pub fn human(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    s.replace(".0k", "k").replace(".0M", "M")
}

fn colour(i: usize) -> RGBColor {
    const COLOURS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    COLOURS[i % COLOURS.len()]
}

/// Draws the evaluation into an SVG file at `path`.
pub fn draw(path: &Path, e: &Evaluation) -> Result<(), Failure> {
    let rows = e.workloads.len().max(1) as u32;
    let cols = FIGURES.len() as u32 + 1;
    let size = (
        cols * PANEL_WIDTH_PX,
        LEGEND_HEIGHT_PX + rows * PANEL_HEIGHT_PX,
    );
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let (legend, body) = root.split_vertically(LEGEND_HEIGHT_PX);
    let plugins: Vec<&str> = e.workloads.first().map_or_else(Vec::new, |w| {
        e.of(w.scenario).iter().map(|s| s.plugin.as_str()).collect()
    });
    draw_legend(&legend, &plugins)?;
    let panels = body.split_evenly((rows as usize, cols as usize));
    for (row, w) in e.workloads.iter().enumerate() {
        let summaries = e.of(w.scenario);
        for (col, figure) in FIGURES.into_iter().enumerate() {
            let spreads: Vec<Option<Spread>> = summaries.iter().map(|s| s.spread(figure)).collect();
            let title = format!("{} · {}", w.scenario.name(), figure.label());
            bars(&panels[row * cols as usize + col], &title, &spreads)?;
        }
        let title = format!("{} · messages per partition", w.scenario.name());
        per_partition(
            &panels[row * cols as usize + FIGURES.len()],
            &title,
            &summaries,
        )?;
    }
    root.present()?;
    Ok(())
}

fn draw_legend(area: &DrawingArea<SVGBackend<'_>, Shift>, plugins: &[&str]) -> Result<(), Failure> {
    let mut x = 20;
    area.draw(&Text::new(
        "median of the rounds; error bars: min–max",
        (x, 12),
        ("sans-serif", 13),
    ))?;
    x += 300;
    for (i, name) in plugins.iter().enumerate() {
        area.draw(&Rectangle::new([(x, 8), (x + 14, 22)], colour(i).filled()))?;
        area.draw(&Text::new(
            name.to_string(),
            (x + 20, 10),
            ("sans-serif", 14),
        ))?;
        x += 30 + 9 * name.len() as i32;
    }
    Ok(())
}

fn bars(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    spreads: &[Option<Spread>],
) -> Result<(), Failure> {
    let top = spreads
        .iter()
        .flatten()
        .map(|s| s.max)
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.15;
    let n = spreads.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 14))
        .margin(8)
        .x_label_area_size(8)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..n as f64, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(6)
        .y_label_formatter(&|y| human(*y))
        .draw()?;
    for (i, s) in spreads.iter().enumerate() {
        let Some(s) = s else { continue };
        let x = i as f64;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(x + 0.15, 0.0), (x + 0.85, s.median)],
            colour(i).filled(),
        )))?;
        let bar = [(x + 0.5, s.min), (x + 0.5, s.max)];
        let caps = [
            [(x + 0.38, s.min), (x + 0.62, s.min)],
            [(x + 0.38, s.max), (x + 0.62, s.max)],
        ];
        chart.draw_series(std::iter::once(PathElement::new(
            bar.to_vec(),
            BLACK.stroke_width(1),
        )))?;
        chart.draw_series(
            caps.iter()
                .map(|c| PathElement::new(c.to_vec(), BLACK.stroke_width(1))),
        )?;
        chart.draw_series(std::iter::once(Text::new(
            human(s.median),
            (x + 0.2, s.max + top * 0.07),
            ("sans-serif", 11),
        )))?;
    }
    Ok(())
}

fn per_partition(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    summaries: &[&Summary],
) -> Result<(), Failure> {
    let medians: Vec<Vec<f64>> = summaries.iter().map(|s| s.partition_messages()).collect();
    let partitions = medians.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let top = medians
        .iter()
        .flatten()
        .copied()
        .fold(0.0_f64, f64::max)
        .max(1.0)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 14))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..partitions as f64, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(partitions.min(12) + 1)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("partition")
        .y_labels(6)
        .y_label_formatter(&|y| human(*y))
        .draw()?;
    let width = 0.8 / summaries.len().max(1) as f64;
    for (i, counts) in medians.iter().enumerate() {
        chart.draw_series(counts.iter().enumerate().map(|(p, v)| {
            let left = p as f64 + 0.1 + i as f64 * width;
            Rectangle::new([(left, 0.0), (left + width, *v)], colour(i).filled())
        }))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_numbers_when_labelling_should_be_short_and_readable() {
        assert_eq!(human(900_000.0), "900k");
        assert_eq!(human(1_500_000.0), "1.5M");
        assert_eq!(human(2_000_000.0), "2M");
        assert_eq!(human(1_500.0), "1.5k");
        assert_eq!(human(2_000.0), "2k");
        assert_eq!(human(42.4), "42");
        assert_eq!(human(1.25), "1.2");
        assert_eq!(human(0.125), "0.12");
        assert_eq!(human(0.0), "0");
    }
}

//! The SVG chart of `bench partitioners`: throughput and p99 ack latency per
//! plugin (bars), and messages per partition per plugin (one line each).

use super::bench_partitioners::RunResult;
use plotters::prelude::*;
use std::path::Path;

const WIDTH_PX: u32 = 1500;
const HEIGHT_PX: u32 = 480;

/// Draws `results` into an SVG file at `path`.
pub fn draw(path: &Path, results: &[RunResult]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 3));
    let names: Vec<String> = results.iter().map(|r| r.plugin.clone()).collect();
    let throughput: Vec<f64> = results.iter().map(RunResult::msgs_per_sec).collect();
    let p99: Vec<f64> = results.iter().map(|r| r.latency_ms(0.99)).collect();
    bars(&panels[0], "Throughput (msg/s)", &names, &throughput)?;
    bars(&panels[1], "Ack latency p99 (ms)", &names, &p99)?;
    per_partition(&panels[2], results)?;
    root.present()?;
    Ok(())
}

fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    names: &[String],
    values: &[f64],
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let top = values.iter().copied().fold(0.0_f64, f64::max).max(1e-9) * 1.15;
    let n = names.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n as f64, 0.0..top)?;
    let labels = names.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&move |x| {
            let i = x.floor() as usize;
            let centre = (x - x.floor() - 0.5).abs() < 0.01;
            if centre {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .draw()?;
    chart.draw_series(values.iter().enumerate().map(|(i, v)| {
        let colour = Palette99::pick(i).filled();
        Rectangle::new([(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *v)], colour)
    }))?;
    chart.draw_series(values.iter().enumerate().map(|(i, v)| {
        Text::new(format!("{v:.1}"), (i as f64 + 0.3, *v + top * 0.02), ("sans-serif", 13))
    }))?;
    Ok(())
}

fn per_partition<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    results: &[RunResult],
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let partitions = results.iter().map(|r| r.partition_messages.len()).max().unwrap_or(1).max(1);
    let top = results.iter().flat_map(|r| r.partition_messages.iter().copied()).max().unwrap_or(1).max(1) as f64 * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption("Messages per partition", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..(partitions as f64 - 1.0).max(1.0), 0.0..top)?;
    chart.configure_mesh().x_labels(partitions).x_desc("partition").x_label_formatter(&|x| format!("{x:.0}")).draw()?;
    for (i, r) in results.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> =
            r.partition_messages.iter().enumerate().map(|(p, n)| (p as f64, *n as f64)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(r.plugin.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled())))?;
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
    Ok(())
}

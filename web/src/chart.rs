//! Charts drawn with plotters on a `<canvas>`.

use plotters::prelude::*;
use plotters_canvas::CanvasBackend;

/// Draws the ingest-rate history; errors are drawn nowhere but logged, since
/// a failed chart must not take the page down.
pub fn draw_ingest_rate(canvas: web_sys::HtmlCanvasElement, points: &[(f64, f64)]) {
    if let Err(e) = try_draw(canvas, points) {
        web_sys::console::error_1(&format!("chart: {e}").into());
    }
}

fn try_draw(
    canvas: web_sys::HtmlCanvasElement,
    points: &[(f64, f64)],
) -> Result<(), Box<dyn std::error::Error>> {
    let backend = CanvasBackend::with_canvas_object(canvas).ok_or("canvas has no 2d context")?;
    let root = backend.into_drawing_area();
    root.fill(&WHITE)?;
    let (x0, x1) = match (points.first(), points.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => (a.0, b.0),
        (Some(a), _) => (a.0, a.0 + 1.0),
        _ => (0.0, 1.0),
    };
    let y_max = points.iter().map(|p| p.1).fold(1.0_f64, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds since page load")
        .draw()?;
    chart.draw_series(LineSeries::new(points.iter().copied(), &BLUE))?;
    root.present()?;
    Ok(())
}

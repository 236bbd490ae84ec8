//! A heatmap of Prometheus histogram buckets over time: one row per bucket
//! (`le`), one column per step, coloured by how many observations fell in
//! that bucket (cumulative buckets are differenced first).

use crate::series::Series;
use crate::theme::Theme;
use crate::units::Unit;
use plotters::prelude::*;
use plotters_canvas::CanvasBackend;
use std::rc::Rc;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub id: AttrValue,
    /// Cumulative bucket series, each with an `le` label.
    pub series: Rc<Vec<Series>>,
    pub start: f64,
    pub end: f64,
    pub unit: Unit,
    pub height: u32,
}

/// Bucket bounds (ascending) and, per bucket, (time, count in the bucket).
pub struct Cells {
    pub bounds: Vec<f64>,
    pub rows: Vec<Vec<(f64, f64)>>,
}

fn le(s: &Series) -> Option<f64> {
    let v = s.labels.get("le")?;
    Some(crate::series::parse_value(v))
}

/// Differences cumulative buckets into per-bucket counts.
pub fn cells(series: &[Series]) -> Cells {
    let mut buckets: Vec<(f64, &Series)> = series
        .iter()
        .filter_map(|s| le(s).map(|b| (b, s)))
        .filter(|(b, _)| !b.is_nan())
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rows = Vec::with_capacity(buckets.len());
    // The bucket below, by timestamp: each count is this bucket minus it.
    let mut below: std::collections::HashMap<u64, f64> = std::collections::HashMap::new();
    for (_, s) in &buckets {
        let row = s
            .points
            .iter()
            .map(|&(t, v)| {
                (
                    t,
                    (v - below.get(&t.to_bits()).copied().unwrap_or(0.0)).max(0.0),
                )
            })
            .collect();
        rows.push(row);
        below = s.points.iter().map(|&(t, v)| (t.to_bits(), v)).collect();
    }
    Cells {
        bounds: buckets.iter().map(|b| b.0).collect(),
        rows,
    }
}

/// Background to a hot colour, by intensity 0..1.
fn heat(f: f64, bg: (u8, u8, u8)) -> RGBColor {
    let hot = (0xe8u8, 0x5d, 0x04);
    let cold = (0x37u8, 0x7e, 0xb8);
    let f = f.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8, t: f64| (f64::from(a) + (f64::from(b) - f64::from(a)) * t) as u8;
    if f == 0.0 {
        return RGBColor(bg.0, bg.1, bg.2);
    }
    let t = f.sqrt();
    RGBColor(
        mix(cold.0, hot.0, t),
        mix(cold.1, hot.1, t),
        mix(cold.2, hot.2, t),
    )
}

/// Draws the cells; answers how many were drawn.
fn draw(canvas: &web_sys::HtmlCanvasElement, p: &Props, theme: Theme) -> Result<usize, String> {
    let dpr = web_sys::window()
        .map_or(1.0, |w| w.device_pixel_ratio())
        .max(1.0);
    let css_w = f64::from(canvas.client_width().max(320));
    let css_h = f64::from(p.height);
    canvas.set_width((css_w * dpr) as u32);
    canvas.set_height((css_h * dpr) as u32);
    let c = cells(&p.series);
    let colors = theme.colors();
    let bg = RGBColor(
        colors.background.0,
        colors.background.1,
        colors.background.2,
    );
    let text = RGBColor(colors.text.0, colors.text.1, colors.text.2);
    let backend =
        CanvasBackend::with_canvas_object(canvas.clone()).ok_or("canvas has no 2d context")?;
    let root = backend.into_drawing_area();
    root.fill(&bg).map_err(|e| e.to_string())?;
    let n = c.bounds.len().max(1);
    let span = (p.end - p.start).max(1.0);
    let bounds = c.bounds.clone();
    let unit = p.unit;
    let mut chart = ChartBuilder::on(&root)
        .margin((8.0 * dpr) as i32)
        .x_label_area_size((24.0 * dpr) as i32)
        .y_label_area_size((64.0 * dpr) as i32)
        .build_cartesian_2d(p.start..p.end, 0.0..n as f64)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(n.min(10))
        .y_label_formatter(&|y| {
            let i = y.floor() as usize;
            match bounds.get(i) {
                Some(b) if b.is_infinite() => "+Inf".into(),
                Some(b) => unit.format(*b),
                None => String::new(),
            }
        })
        .label_style(("sans-serif", 12.0 * dpr).into_font().color(&text))
        .axis_style(RGBColor(colors.axis.0, colors.axis.1, colors.axis.2))
        .draw()
        .map_err(|e| e.to_string())?;
    let font = ("sans-serif", 12.0 * dpr).into_font().color(&text);
    crate::chart::time_axis(&chart, &root, (p.start, p.end, 0.0), css_w, dpr, &font, bg)?;
    let max = c
        .rows
        .iter()
        .flatten()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    for (i, row) in c.rows.iter().enumerate() {
        let width = if row.len() > 1 {
            (row[row.len() - 1].0 - row[0].0) / (row.len() - 1) as f64
        } else {
            span / 100.0
        };
        chart
            .draw_series(row.iter().map(|&(t, v)| {
                let f = if max > 0.0 { v / max } else { 0.0 };
                Rectangle::new(
                    [
                        (t - width / 2.0, i as f64),
                        (t + width / 2.0, i as f64 + 1.0),
                    ],
                    heat(f, colors.background).filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(c.rows.iter().map(Vec::len).sum())
}

#[function_component(Heatmap)]
pub fn heatmap(props: &Props) -> Html {
    let theme = use_context::<Theme>().unwrap_or_default();
    let canvas = use_node_ref();
    {
        let canvas = canvas.clone();
        let snapshot = Props {
            id: props.id.clone(),
            series: props.series.clone(),
            start: props.start,
            end: props.end,
            unit: props.unit,
            height: props.height,
        };
        use_effect_with(
            (
                props.series.clone(),
                theme,
                props.start.to_bits(),
                props.end.to_bits(),
            ),
            move |(_, theme, ..)| {
                if let Some(el) = canvas.cast::<web_sys::HtmlCanvasElement>() {
                    match draw(&el, &snapshot, *theme) {
                        Ok(n) => {
                            let _ = el.set_attribute("data-cells", &n.to_string());
                        }
                        Err(e) => web_sys::console::error_1(&format!("heatmap: {e}").into()),
                    }
                }
            },
        );
    }
    let no_buckets = props.series.iter().all(|s| !s.labels.contains_key("le"));
    html! {
        <div class="chart-canvas" style={format!("height:{}px", props.height)}>
            <canvas id={props.id.clone()} ref={canvas} style={format!("width:100%;height:{}px", props.height)}></canvas>
            if no_buckets { <div class="chart-empty">{ "A heatmap needs histogram buckets (series with an le label)" }</div> }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::LabelSet;

    fn bucket(le: &str, points: Vec<(f64, f64)>) -> Series {
        let mut labels = LabelSet::new();
        labels.insert("le".into(), le.into());
        Series { labels, points }
    }

    #[test]
    fn differences_cumulative_buckets_in_order() {
        let c = cells(&[
            bucket("+Inf", vec![(0.0, 10.0), (1.0, 12.0)]),
            bucket("0.1", vec![(0.0, 2.0), (1.0, 2.0)]),
            bucket("1", vec![(0.0, 7.0), (1.0, 9.0)]),
        ]);
        assert_eq!(c.bounds, vec![0.1, 1.0, f64::INFINITY]);
        assert_eq!(c.rows[0], vec![(0.0, 2.0), (1.0, 2.0)]);
        assert_eq!(c.rows[1], vec![(0.0, 5.0), (1.0, 7.0)]);
        assert_eq!(c.rows[2], vec![(0.0, 3.0), (1.0, 3.0)]);
    }
}

//! The time-series graph: plotters drawing on a `<canvas>` at the screen's
//! pixel density, with hover tooltips, a legend that isolates or hides
//! series, and drag-to-zoom.

use crate::palette;
use crate::theme::Theme;
use crate::units::Unit;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_canvas::CanvasBackend;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use yew::prelude::*;

/// One line of the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartSeries {
    /// Stable identity (the label set): colour and legend state follow it.
    pub key: String,
    /// The legend text.
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A horizontal line at a value, coloured.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    pub value: f64,
    pub color: (u8, u8, u8),
}

#[derive(Properties, PartialEq)]
pub struct ChartProps {
    pub id: AttrValue,
    pub series: Rc<Vec<ChartSeries>>,
    /// The time range shown (unix seconds) and the query step: a gap longer
    /// than 1.5 steps breaks the line instead of bridging missing data.
    pub start: f64,
    pub end: f64,
    pub step: f64,
    #[prop_or_default]
    pub unit: Unit,
    #[prop_or_default]
    pub stacked: bool,
    /// Draw each point as a bar one step wide (a histogram, e.g. log volume).
    #[prop_or_default]
    pub bars: bool,
    #[prop_or(260)]
    pub height: u32,
    #[prop_or_default]
    pub thresholds: Rc<Vec<Threshold>>,
    /// Called with (from, to) after a drag across the graph.
    #[prop_or_default]
    pub on_zoom: Option<Callback<(f64, f64)>>,
}

/// Where the last drawing put the data, to map the mouse back to it.
#[derive(Clone, Copy, Debug)]
struct Layout {
    px: (i32, i32),
    py: (i32, i32),
    x: (f64, f64),
    y: (f64, f64),
    dpr: f64,
}

impl Layout {
    fn ts_at(&self, css_x: f64) -> f64 {
        let px = css_x * self.dpr;
        let f = (px - self.px.0 as f64) / (self.px.1 - self.px.0).max(1) as f64;
        self.x.0 + f.clamp(0.0, 1.0) * (self.x.1 - self.x.0)
    }
    fn css_y_of(&self, v: f64) -> f64 {
        let f = (v - self.y.0) / (self.y.1 - self.y.0);
        (self.py.1 as f64 - f * (self.py.1 - self.py.0) as f64) / self.dpr
    }
    fn css_x_of(&self, t: f64) -> f64 {
        let f = (t - self.x.0) / (self.x.1 - self.x.0);
        (self.px.0 as f64 + f * (self.px.1 - self.px.0) as f64) / self.dpr
    }
    fn inside(&self, css_x: f64, css_y: f64) -> bool {
        let (x, y) = (css_x * self.dpr, css_y * self.dpr);
        x >= self.px.0 as f64
            && x <= self.px.1 as f64
            && y >= self.py.0 as f64
            && y <= self.py.1 as f64
    }
}

#[derive(Clone, PartialEq)]
struct Tip {
    left: f64,
    top: f64,
    time: String,
    name: String,
    value: String,
    color: String,
}

/// Which series the legend leaves visible.
fn visible<'a>(series: &'a [ChartSeries], hidden: &HashSet<String>) -> Vec<&'a ChartSeries> {
    series.iter().filter(|s| !hidden.contains(&s.key)).collect()
}

/// A legend click: isolate this series, or show all again if it already was
/// the only one shown. With Ctrl/⌘ it toggles just this series.
fn legend_click(
    series: &[ChartSeries],
    hidden: &HashSet<String>,
    key: &str,
    toggle: bool,
) -> HashSet<String> {
    let mut h = hidden.clone();
    if toggle {
        if !h.remove(key) {
            h.insert(key.to_string());
        }
        return h;
    }
    let only_this = series
        .iter()
        .all(|s| (s.key == key) != hidden.contains(&s.key));
    if only_this {
        HashSet::new()
    } else {
        series
            .iter()
            .filter(|s| s.key != key)
            .map(|s| s.key.clone())
            .collect()
    }
}

/// Cuts a series into runs without gaps (missing steps or NaN).
fn runs(points: &[(f64, f64)], step: f64) -> Vec<&[(f64, f64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..points.len() {
        let broken = !points[i].1.is_finite();
        let gap = i > start && step > 0.0 && points[i].0 - points[i - 1].0 > 1.5 * step;
        if broken || gap {
            if i > start {
                out.push(&points[start..i]);
            }
            start = if broken { i + 1 } else { i };
        }
    }
    if start < points.len() {
        out.push(&points[start..]);
    }
    out
}

/// Cumulative values per timestamp, series by series, for stacking.
fn stack(series: &[&ChartSeries]) -> Vec<Vec<(f64, f64)>> {
    let mut sums: BTreeMap<i64, f64> = BTreeMap::new();
    series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter(|p| p.1.is_finite())
                .map(|&(t, v)| {
                    let acc = sums.entry((t * 1000.0).round() as i64).or_insert(0.0);
                    *acc += v;
                    (t, *acc)
                })
                .collect()
        })
        .collect()
}

/// The lines as drawn: the series' own points (borrowed: this runs on
/// every mouse move), or their running sums when stacked.
fn plotted<'a>(shown: &[&'a ChartSeries], stacked: bool) -> Vec<Cow<'a, [(f64, f64)]>> {
    if stacked {
        stack(shown).into_iter().map(Cow::Owned).collect()
    } else {
        shown
            .iter()
            .map(|s| Cow::Borrowed(s.points.as_slice()))
            .collect()
    }
}

fn y_range<L: AsRef<[(f64, f64)]>>(
    lines: &[L],
    thresholds: &[Threshold],
    stacked: bool,
) -> (f64, f64) {
    let values = lines
        .iter()
        .flat_map(|l| l.as_ref().iter())
        .map(|p| p.1)
        .chain(thresholds.iter().map(|t| t.value))
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if stacked || (lo >= 0.0 && lo <= hi * 0.5) {
        lo = lo.min(0.0);
    }
    if hi <= lo {
        // One value: show it from zero (or to zero, when negative).
        if lo > 0.0 {
            lo = 0.0;
        } else if lo < 0.0 {
            hi = 0.0;
        } else {
            hi = 1.0;
        }
    }
    let pad = (hi - lo) * 0.05;
    (if lo == 0.0 { 0.0 } else { lo - pad }, hi + pad)
}

fn rgb(c: (u8, u8, u8)) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// Time ticks on round local times, with grid lines (plotters' own fall on
/// round numbers of seconds since 1970, which read as odd clock times).
/// The chart's mesh is drawn with `disable_x_mesh().x_labels(0)`.
pub fn time_axis<DB: DrawingBackend>(
    chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    root: &DrawingArea<DB, plotters::coord::Shift>,
    (x0, x1, y0): (f64, f64, f64),
    css_w: f64,
    dpr: f64,
    font: &TextStyle<'_>,
    grid: RGBColor,
) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let ticks = crate::time::time_ticks(
        x0,
        x1,
        ((css_w / 110.0) as usize).max(2),
        crate::time::tz_offset(),
    );
    let tick_font = font.pos(Pos::new(HPos::Center, VPos::Top));
    for &t in &ticks {
        let (px, py) = chart.backend_coord(&(t, y0));
        let top = chart.plotting_area().get_pixel_range().1.start;
        root.draw(&PathElement::new(
            [(px, top), (px, py)],
            grid.stroke_width(1),
        ))
        .map_err(|x| e(&x))?;
        root.draw(&Text::new(
            crate::time::format_tick(t, x1 - x0),
            (px, py + (4.0 * dpr) as i32),
            tick_font.clone(),
        ))
        .map_err(|x| e(&x))?;
    }
    Ok(())
}

struct Drawn {
    layout: Layout,
    points: usize,
}

fn draw(
    canvas: &web_sys::HtmlCanvasElement,
    props: &ChartProps,
    hidden: &HashSet<String>,
    theme: Theme,
) -> Result<Drawn, String> {
    let window = web_sys::window().ok_or("no window")?;
    let dpr = window.device_pixel_ratio().max(1.0);
    let css_w = f64::from(canvas.client_width().max(320));
    let css_h = f64::from(props.height);
    canvas.set_width((css_w * dpr) as u32);
    canvas.set_height((css_h * dpr) as u32);

    let shown = visible(&props.series, hidden);
    let series_colors = palette::assign(props.series.iter().map(|s| s.key.as_str()));
    let lines = plotted(&shown, props.stacked);
    let (y0, y1) = y_range(&lines, &props.thresholds, props.stacked || props.bars);
    let (x0, x1) = if props.end > props.start {
        (props.start, props.end)
    } else {
        (props.start, props.start + 1.0)
    };

    let colors = theme.colors();
    let backend =
        CanvasBackend::with_canvas_object(canvas.clone()).ok_or("canvas has no 2d context")?;
    let root = backend.into_drawing_area();
    let e = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&rgb(colors.background)).map_err(|x| e(&x))?;
    let px = |v: f64| (v * dpr) as i32;
    let font = ("sans-serif", 12.0 * dpr)
        .into_font()
        .color(&rgb(colors.text));
    let unit = props.unit;
    let mut chart = ChartBuilder::on(&root)
        .margin(px(8.0))
        .x_label_area_size(px(24.0))
        .y_label_area_size(px(64.0))
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(((css_h / 45.0) as usize).max(2))
        .y_label_formatter(&|v| unit.format(*v))
        .label_style(font.clone())
        .axis_style(rgb(colors.axis))
        .bold_line_style(rgb(colors.grid))
        .light_line_style(rgb(colors.background))
        .draw()
        .map_err(|x| e(&x))?;
    time_axis(
        &chart,
        &root,
        (x0, x1, y0),
        css_w,
        dpr,
        &font,
        rgb(colors.grid),
    )?;

    let width = (1.5 * dpr).round().max(1.0) as u32;
    let mut points = 0;
    if props.stacked {
        // Paint the tallest band first so each lower one covers its share.
        for (s, line) in shown.iter().zip(&lines).rev() {
            let c = rgb(palette::pick(&series_colors, &s.key));
            let fill = c.mix(1.0).to_rgba();
            let pastel = RGBColor(
                ((u16::from(fill.0) + 2 * u16::from(colors.background.0)) / 3) as u8,
                ((u16::from(fill.1) + 2 * u16::from(colors.background.1)) / 3) as u8,
                ((u16::from(fill.2) + 2 * u16::from(colors.background.2)) / 3) as u8,
            );
            for run in runs(line, props.step) {
                chart
                    .draw_series(
                        AreaSeries::new(run.iter().copied(), 0.0, pastel.filled())
                            .border_style(c.stroke_width(width)),
                    )
                    .map_err(|x| e(&x))?;
                points += run.len();
            }
        }
    } else if props.bars {
        let half = (props.step.max(1.0)) * 0.45;
        for (s, line) in shown.iter().zip(&lines) {
            let c = rgb(palette::pick(&series_colors, &s.key));
            chart
                .draw_series(
                    line.iter().filter(|p| p.1.is_finite()).map(|&(t, v)| {
                        Rectangle::new([(t - half, 0.0), (t + half, v)], c.filled())
                    }),
                )
                .map_err(|x| e(&x))?;
            points += line.len();
        }
    } else {
        for (s, line) in shown.iter().zip(&lines) {
            let c = rgb(palette::pick(&series_colors, &s.key));
            for run in runs(line, props.step) {
                if run.len() == 1 {
                    chart
                        .draw_series(std::iter::once(Circle::new(run[0], px(2.5), c.filled())))
                        .map_err(|x| e(&x))?;
                } else {
                    chart
                        .draw_series(LineSeries::new(run.iter().copied(), c.stroke_width(width)))
                        .map_err(|x| e(&x))?;
                }
                points += run.len();
            }
        }
    }
    for t in props.thresholds.iter() {
        let c = rgb(t.color);
        chart
            .draw_series(LineSeries::new(
                [(x0, t.value), (x1, t.value)],
                c.stroke_width(width),
            ))
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    let (rx, ry) = chart.plotting_area().get_pixel_range();
    Ok(Drawn {
        layout: Layout {
            px: (rx.start, rx.end),
            py: (ry.start, ry.end),
            x: (x0, x1),
            y: (y0, y1),
            dpr,
        },
        points,
    })
}

/// The point nearest the mouse among the visible series.
fn nearest(
    series: &[ChartSeries],
    hidden: &HashSet<String>,
    stacked: bool,
    layout: &Layout,
    css_x: f64,
    css_y: f64,
) -> Option<(usize, (f64, f64), f64)> {
    let ts = layout.ts_at(css_x);
    let shown = visible(series, hidden);
    let lines = plotted(&shown, stacked);
    let mut best: Option<(usize, (f64, f64), f64, f64)> = None;
    for (i, line) in lines.iter().enumerate() {
        let at = line.partition_point(|p| p.0 < ts);
        for j in [at.wrapping_sub(1), at] {
            let Some(&(t, v)) = line.get(j) else { continue };
            if !v.is_finite() {
                continue;
            }
            let dx = (layout.css_x_of(t) - css_x).abs();
            let dy = (layout.css_y_of(v) - css_y).abs();
            let d = dx * 4.0 + dy;
            if best.is_none_or(|b| d < b.3) {
                // The tooltip shows the series' own value, not the stack's.
                let own = if stacked {
                    shown[i].points.iter().find(|p| p.0 == t).map_or(v, |p| p.1)
                } else {
                    v
                };
                best = Some((i, (t, v), own, d));
            }
        }
    }
    let (i, p, own, _) = best?;
    let idx = series.iter().position(|s| s.key == shown[i].key)?;
    Some((idx, p, own))
}

#[function_component(TimeSeriesChart)]
pub fn time_series_chart(props: &ChartProps) -> Html {
    let theme = use_context::<Theme>().unwrap_or_default();
    let canvas = use_node_ref();
    let hidden = use_state(HashSet::<String>::new);
    let layout: Rc<RefCell<Option<Layout>>> = use_mut_ref(|| None);
    let tip = use_state(|| None::<Tip>);
    let drag = use_state(|| None::<(f64, f64)>);
    let resized = use_state(|| 0u32);

    {
        let resized = resized.clone();
        let count = std::cell::Cell::new(0u32);
        use_effect_with((), move |_| {
            let listener = web_sys::window().map(|w| {
                gloo_events::EventListener::new(&w, "resize", move |_| {
                    count.set(count.get().wrapping_add(1));
                    resized.set(count.get());
                })
            });
            move || drop(listener)
        });
    }

    {
        let canvas = canvas.clone();
        let layout = layout.clone();
        let deps = (
            props.series.clone(),
            (*hidden).clone(),
            theme,
            *resized,
            (
                props.start.to_bits(),
                props.end.to_bits(),
                props.stacked,
                props.bars,
                props.unit,
            ),
            props.thresholds.clone(),
        );
        let snapshot = ChartProps {
            id: props.id.clone(),
            series: props.series.clone(),
            start: props.start,
            end: props.end,
            step: props.step,
            unit: props.unit,
            stacked: props.stacked,
            bars: props.bars,
            height: props.height,
            thresholds: props.thresholds.clone(),
            on_zoom: None,
        };
        use_effect_with(deps, move |(_, hidden, theme, ..)| {
            if let Some(el) = canvas.cast::<web_sys::HtmlCanvasElement>() {
                let perf = web_sys::window().and_then(|w| w.performance());
                let t0 = perf.as_ref().map_or(0.0, |p| p.now());
                match draw(&el, &snapshot, hidden, *theme) {
                    Ok(d) => {
                        let ms = perf.as_ref().map_or(0.0, |p| p.now()) - t0;
                        *layout.borrow_mut() = Some(d.layout);
                        let _ = el.set_attribute("data-render-ms", &format!("{ms:.1}"));
                        let _ = el.set_attribute("data-points", &d.points.to_string());
                    }
                    Err(e) => {
                        *layout.borrow_mut() = None;
                        web_sys::console::error_1(&format!("chart: {e}").into());
                    }
                }
            }
        });
    }

    // One panel's series get distinct colours, the same on every refresh.
    let colors = std::rc::Rc::new(palette::assign(props.series.iter().map(|s| s.key.as_str())));
    let onmousemove = {
        let colors = colors.clone();
        let layout = layout.clone();
        let tip = tip.clone();
        let drag = drag.clone();
        let series = props.series.clone();
        let hidden = hidden.clone();
        let unit = props.unit;
        let stacked = props.stacked;
        Callback::from(move |ev: MouseEvent| {
            let (x, y) = (f64::from(ev.offset_x()), f64::from(ev.offset_y()));
            if let Some((a, _)) = *drag {
                drag.set(Some((a, x)));
            }
            let Some(l) = *layout.borrow() else { return };
            if !l.inside(x, y) {
                tip.set(None);
                return;
            }
            let Some((i, (t, v), own)) = nearest(&series, &hidden, stacked, &l, x, y) else {
                tip.set(None);
                return;
            };
            let s = &series[i];
            let _ = v;
            tip.set(Some(Tip {
                left: x,
                top: y,
                time: crate::time::format_datetime(t),
                name: s.name.clone(),
                value: unit.format(own),
                color: palette::css(palette::pick(&colors, &s.key)),
            }));
        })
    };
    let onmousedown = {
        let drag = drag.clone();
        let layout = layout.clone();
        Callback::from(move |ev: MouseEvent| {
            let x = f64::from(ev.offset_x());
            if layout
                .borrow()
                .is_some_and(|l| l.inside(x, f64::from(ev.offset_y())))
            {
                ev.prevent_default();
                drag.set(Some((x, x)));
            }
        })
    };
    let onmouseup = {
        let drag = drag.clone();
        let layout = layout.clone();
        let on_zoom = props.on_zoom.clone();
        Callback::from(move |_: MouseEvent| {
            if let (Some((a, b)), Some(l), Some(cb)) = (*drag, *layout.borrow(), on_zoom.as_ref()) {
                if (a - b).abs() > 4.0 {
                    let (t0, t1) = (l.ts_at(a.min(b)), l.ts_at(a.max(b)));
                    cb.emit((t0.floor(), t1.ceil()));
                }
            }
            drag.set(None);
        })
    };
    let onmouseleave = {
        let tip = tip.clone();
        let drag = drag.clone();
        Callback::from(move |_: MouseEvent| {
            tip.set(None);
            drag.set(None);
        })
    };

    let legend: Html = props
        .series
        .iter()
        .map(|s| {
            let key = s.key.clone();
            let onclick = {
                let hidden = hidden.clone();
                let series = props.series.clone();
                Callback::from(move |ev: MouseEvent| {
                    let toggle = ev.ctrl_key() || ev.meta_key();
                    hidden.set(legend_click(&series, &hidden, &key, toggle));
                })
            };
            let off = hidden.contains(&s.key);
            let color = palette::css(palette::pick(&colors, &s.key));
            html! {
                <li>
                    <button class={classes!("legend-item", off.then_some("off"))} {onclick}
                        title="click: show only this series; Ctrl-click: hide or show it">
                        <span class="swatch" style={format!("background:{color}")}></span>
                        { s.name.clone() }
                    </button>
                </li>
            }
        })
        .collect();

    let tip_html = match &*tip {
        Some(t) => {
            let flip = t.left > 360.0;
            let style = if flip {
                format!(
                    "right:calc(100% - {}px);top:{}px",
                    t.left - 12.0,
                    t.top + 12.0
                )
            } else {
                format!("left:{}px;top:{}px", t.left + 12.0, t.top + 12.0)
            };
            html! {
                <div class="tooltip" {style}>
                    <div class="tooltip-time">{ t.time.clone() }</div>
                    <div><span class="swatch" style={format!("background:{}", t.color)}></span>
                        <span class="tooltip-name">{ t.name.clone() }</span>
                        { ": " }<b class="tooltip-value">{ t.value.clone() }</b></div>
                </div>
            }
        }
        None => html! {},
    };
    let selection = match *drag {
        Some((a, b)) if (a - b).abs() > 1.0 => html! {
            <div class="zoom-selection"
                style={format!("left:{}px;width:{}px;height:{}px", a.min(b), (a - b).abs(), props.height)}></div>
        },
        _ => html! {},
    };
    let empty = props.series.is_empty();
    html! {
        <div class="chart">
            <div class="chart-canvas" style={format!("height:{}px", props.height)}>
                <canvas id={props.id.clone()} ref={canvas}
                    style={format!("width:100%;height:{}px", props.height)}
                    {onmousemove} {onmousedown} {onmouseup} {onmouseleave}></canvas>
                { tip_html }
                { selection }
                if empty { <div class="chart-empty">{ "No data in this time range" }</div> }
            </div>
            <ul class="legend">{ legend }</ul>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(key: &str, points: Vec<(f64, f64)>) -> ChartSeries {
        ChartSeries {
            key: key.into(),
            name: key.into(),
            points,
        }
    }

    #[test]
    fn gaps_and_nan_break_lines() {
        let p = vec![
            (0.0, 1.0),
            (10.0, 2.0),
            (40.0, 3.0),
            (50.0, f64::NAN),
            (60.0, 4.0),
        ];
        let r = runs(&p, 10.0);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].len(), 2);
        assert_eq!(r[1], &[(40.0, 3.0)]);
        assert_eq!(r[2], &[(60.0, 4.0)]);
        assert_eq!(runs(&p[..3], 0.0).len(), 1);
    }

    #[test]
    fn legend_isolates_then_restores() {
        let all = vec![s("a", vec![]), s("b", vec![]), s("c", vec![])];
        let none = HashSet::new();
        let only_b = legend_click(&all, &none, "b", false);
        assert_eq!(only_b.len(), 2);
        assert!(!only_b.contains("b"));
        assert!(legend_click(&all, &only_b, "b", false).is_empty());
        let c_hidden = legend_click(&all, &none, "c", true);
        assert_eq!(c_hidden, HashSet::from(["c".to_string()]));
        assert!(legend_click(&all, &c_hidden, "c", true).is_empty());
    }

    #[test]
    fn stacking_and_ranges() {
        let a = s("a", vec![(0.0, 1.0), (10.0, 2.0)]);
        let b = s("b", vec![(0.0, 3.0), (10.0, f64::NAN)]);
        let st = stack(&[&a, &b]);
        assert_eq!(st[1], vec![(0.0, 4.0)]);
        let (lo, hi) = y_range(&st, &[], true);
        assert_eq!(lo, 0.0);
        assert!(hi > 4.0);
        let (lo, hi) = y_range(&[vec![(0.0, 100.0), (1.0, 101.0)]], &[], false);
        assert!(lo > 99.0 && lo < 100.0 && hi > 101.0, "{lo} {hi}");
        assert_eq!(y_range::<Vec<(f64, f64)>>(&[], &[], false), (0.0, 1.0));
        let (lo, hi) = y_range(&[vec![(0.0, 5.0)]], &[], false);
        assert!(lo == 0.0 && hi > 5.0);
        let (lo, hi) = y_range(&[vec![(0.0, -2.0)]], &[], false);
        assert!(lo < -2.0 && hi >= 0.0);
        assert_eq!(y_range(&[vec![(0.0, 0.0)]], &[], false).0, 0.0);
    }
}

//! Line and bar charts and confusion matrices as PNG files, drawn with `plotters` in the
//! DejaVu Sans font embedded in the binary (so that no system font is needed).

use std::error::Error;
use std::ops::Range;
use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::sig;

type DrawResult<T = ()> = Result<T, Box<dyn Error>>;

/// The points `(first + i, value_i)` of a curve: a loss per epoch from `first = 1`, a value per
/// step from `first = 0`.
pub fn numbered(values: impl IntoIterator<Item = f64>, first: f64) -> Vec<(f64, f64)> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| (first + i as f64, v))
        .collect()
}

/// The colours of the series, in order.
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

/// Size of a single chart, in pixels.
pub const SIZE: (u32, u32) = (960, 560);

fn register_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| "the embedded font")
            .expect("DejaVu Sans parses");
    });
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mark {
    /// A solid line.
    Line,
    /// A dashed line.
    Dashed,
    /// A dot at each point.
    Dots,
}

/// A named series of `(x, y)` points.
#[derive(Debug, Clone)]
pub struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    mark: Mark,
    colour: Option<usize>,
}

/// A chart of series over a shared x axis, with optional vertical and horizontal markers.
#[derive(Debug, Clone)]
pub struct Chart {
    title: String,
    x_label: String,
    y_label: String,
    log_y: bool,
    series: Vec<Series>,
    vlines: Vec<(f64, String)>,
    hlines: Vec<(f64, String)>,
    x_range: Option<Range<f64>>,
    y_range: Option<Range<f64>>,
    legend_below: bool,
}

impl Chart {
    /// An empty chart with a title and axis labels.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_y: false,
            series: Vec::new(),
            vlines: Vec::new(),
            hlines: Vec::new(),
            x_range: None,
            y_range: None,
            legend_below: false,
        }
    }

    /// A logarithmic y axis (points with y ≤ 0 are left out).
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// Adds a series drawn as a solid line.
    pub fn line(self, name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        self.series(name, points, Mark::Line)
    }

    /// Adds a series drawn as `mark`.
    pub fn series(mut self, name: impl Into<String>, points: Vec<(f64, f64)>, mark: Mark) -> Self {
        self.series.push(Series {
            name: name.into(),
            points,
            mark,
            colour: None,
        });
        self
    }

    /// Adds a series drawn as `mark` in the colour of series number `colour` (so that related
    /// series, for instance the same model's training and test curves, share a colour).
    pub fn series_coloured(
        mut self,
        name: impl Into<String>,
        points: Vec<(f64, f64)>,
        mark: Mark,
        colour: usize,
    ) -> Self {
        self.series.push(Series {
            name: name.into(),
            points,
            mark,
            colour: Some(colour),
        });
        self
    }

    /// A labelled vertical line at `x`.
    pub fn vline(mut self, x: f64, label: impl Into<String>) -> Self {
        self.vlines.push((x, label.into()));
        self
    }

    /// A labelled horizontal line at `y`.
    pub fn hline(mut self, y: f64, label: impl Into<String>) -> Self {
        self.hlines.push((y, label.into()));
        self
    }

    /// Shows only `range` of the x axis (the series are clipped to it).
    pub fn x_range(mut self, range: Range<f64>) -> Self {
        self.x_range = Some(range);
        self
    }

    /// Puts the legend in the lower right corner (default: upper right), where the curves
    /// leave room for it.
    pub fn legend_lower_right(mut self) -> Self {
        self.legend_below = true;
        self
    }

    /// Fixes the y axis to `range`.
    pub fn y_range(mut self, range: Range<f64>) -> Self {
        self.y_range = Some(range);
        self
    }

    /// Draws the chart alone into a PNG file.
    pub fn save(&self, path: &Path) -> DrawResult {
        register_font();
        let root = BitMapBackend::new(path, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        self.draw(&root)?;
        root.present()?;
        Ok(())
    }

    fn visible(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let x_range = self.x_range.clone();
        self.series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(move |&(x, y)| {
                y.is_finite()
                    && x.is_finite()
                    && x_range.as_ref().is_none_or(|r| r.start <= x && x <= r.end)
            })
    }

    fn ranges(&self) -> (Range<f64>, Range<f64>) {
        let bounds = |values: &mut dyn Iterator<Item = f64>| {
            values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            })
        };
        let (x0, x1) = match &self.x_range {
            Some(r) => (r.start, r.end),
            None => bounds(
                &mut self
                    .visible()
                    .map(|p| p.0)
                    .chain(self.vlines.iter().map(|v| v.0)),
            ),
        };
        let ys = self
            .visible()
            .map(|p| p.1)
            .chain(self.hlines.iter().map(|h| h.0));
        let (y0, y1) = if self.log_y {
            bounds(&mut ys.filter(|&y| y > 0.0))
        } else {
            bounds(&mut ys.into_iter())
        };
        let (x0, x1) = if x0 < x1 {
            (x0, x1)
        } else if x0.is_finite() {
            (x0 - 0.5, x0 + 0.5)
        } else {
            (0.0, 1.0)
        };
        let y = match &self.y_range {
            Some(r) => r.clone(),
            None if self.log_y => {
                let (y0, y1) = if y0.is_finite() && y0 > 0.0 {
                    (y0, y1.max(y0 * 3.0))
                } else {
                    (1e-3, 1.0)
                };
                y0 / 1.5..y1 * 1.5
            }
            None => {
                let (y0, y1) = if y0 < y1 {
                    (y0, y1)
                } else if y0.is_finite() {
                    (y0 - 0.5, y0 + 0.5)
                } else {
                    (0.0, 1.0)
                };
                let pad = 0.05 * (y1 - y0);
                y0 - pad..y1 + pad
            }
        };
        (x0..x1, y)
    }

    /// Draws the chart into a part of a figure.
    pub fn draw(
        &self,
        area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    ) -> DrawResult {
        register_font();
        let (x, y) = self.ranges();
        let mut builder = ChartBuilder::on(area);
        builder
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(72);
        if self.log_y {
            let chart = builder.build_cartesian_2d(x, y.log_scale())?;
            self.draw_on(chart)
        } else {
            let chart = builder.build_cartesian_2d(x, y)?;
            self.draw_on(chart)
        }
    }

    fn draw_on<'a, Y>(
        &self,
        mut chart: ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    ) -> DrawResult
    where
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let x_span = chart.x_range().end - chart.x_range().start;
        let y_span = chart.y_range().end - chart.y_range().start;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| tick(snap(*x, x_span)))
            .y_label_formatter(&|y| tick(if self.log_y { *y } else { snap(*y, y_span) }))
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        let (x_lo, x_hi) = {
            let r = chart.x_range();
            (r.start, r.end)
        };
        let (y_lo, y_hi) = {
            let r = chart.y_range();
            (r.start, r.end)
        };
        let keep = |&(x, y): &(f64, f64)| {
            x.is_finite() && y.is_finite() && x >= x_lo && x <= x_hi && (!self.log_y || y > 0.0)
        };
        let mut labelled = false;
        for (k, s) in self.series.iter().enumerate() {
            let colour = COLOURS[s.colour.unwrap_or(k) % COLOURS.len()];
            let points: Vec<(f64, f64)> = s.points.iter().copied().filter(keep).collect();
            let series = match s.mark {
                Mark::Line => chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?,
                Mark::Dashed => chart.draw_series(DashedLineSeries::new(
                    points,
                    8,
                    5,
                    colour.stroke_width(2),
                ))?,
                Mark::Dots => chart.draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, colour.filled())),
                )?,
            };
            if !s.name.is_empty() {
                labelled = true;
                // the legend shows each series as it is drawn: a line, a dashed line or a dot
                // (one element type for all three: two segments and a circle, some invisible)
                let (line, dot) = match s.mark {
                    Mark::Line | Mark::Dashed => (colour.stroke_width(3), TRANSPARENT.filled()),
                    Mark::Dots => (TRANSPARENT.stroke_width(3), colour.filled()),
                };
                let gap = if s.mark == Mark::Dashed { 3 } else { 0 };
                series.label(s.name.clone()).legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (10 - gap, 0)], line)
                        + PathElement::new(vec![(10 + gap, 0), (20, 0)], line)
                        + Circle::new((10, 0), 4, dot)
                });
            }
        }
        let grey = RGBColor(90, 90, 90);
        for (x, label) in &self.vlines {
            chart.draw_series(DashedLineSeries::new(
                vec![(*x, y_lo), (*x, y_hi)],
                6,
                4,
                grey.stroke_width(1),
            ))?;
            chart.draw_series(std::iter::once(Text::new(
                label.clone(),
                (*x, y_hi),
                ("sans-serif", 14).into_font().color(&grey),
            )))?;
        }
        for (y, label) in &self.hlines {
            chart.draw_series(DashedLineSeries::new(
                vec![(x_lo, *y), (x_hi, *y)],
                6,
                4,
                grey.stroke_width(1),
            ))?;
            chart.draw_series(std::iter::once(Text::new(
                label.clone(),
                (x_lo, *y),
                ("sans-serif", 14).into_font().color(&grey),
            )))?;
        }
        if labelled {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font(("sans-serif", 15))
                .position(if self.legend_below {
                    SeriesLabelPosition::LowerRight
                } else {
                    SeriesLabelPosition::UpperRight
                })
                .draw()?;
        }
        Ok(())
    }
}

/// `x`, or 0 where it differs from 0 only by rounding (a tick at 0 computed as 2.2e-16) on an
/// axis `span` long.
fn snap(x: f64, span: f64) -> f64 {
    if x.abs() < 1e-9 * span.abs() {
        0.0
    } else {
        x
    }
}

/// An axis label: short decimals for ordinary sizes, `1e-5` style for the others.
fn tick(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    if (1e-3..1e5).contains(&x.abs()) {
        let fixed = format!("{x:.6}");
        fixed
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        let s = format!("{x:.2e}");
        let (mantissa, exponent) = s.split_once('e').expect("an exponent");
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{mantissa}e{exponent}")
    }
}

/// Several charts in one PNG file, `columns` to a row, under a common title.
pub fn save_grid(path: &Path, title: &str, columns: usize, charts: &[Chart]) -> DrawResult {
    register_font();
    let rows = charts.len().div_ceil(columns);
    let size = (
        SIZE.0 * columns as u32 * 3 / 4,
        SIZE.1 * rows as u32 * 3 / 4 + 50,
    );
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 26))?;
    for (chart, area) in charts.iter().zip(root.split_evenly((rows, columns))) {
        chart.draw(&area)?;
    }
    root.present()?;
    Ok(())
}

/// A bar chart of named values into a PNG file, each bar labelled with its value.
pub fn save_bars(path: &Path, title: &str, y_label: &str, bars: &[(String, f64)]) -> DrawResult {
    register_font();
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let top = bars.iter().map(|b| b.1).fold(0.0, f64::max) * 1.15;
    let top = if top > 0.0 { top } else { 1.0 };
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d((0..bars.len().max(1) - 1).into_segmented(), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE.mix(0.0))
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc(y_label)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 17))
        .draw()?;
    for (i, (_, value)) in bars.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), *value),
            ],
            colour.mix(0.8).filled(),
        );
        bar.set_margin(0, 0, 30, 30);
        chart.draw_series(std::iter::once(bar))?;
        chart.draw_series(std::iter::once(Text::new(
            sig(*value),
            (SegmentValue::CenterOf(i), *value + top * 0.02),
            ("sans-serif", 16).into_font(),
        )))?;
    }
    root.present()?;
    Ok(())
}

/// One confusion matrix to draw: its title and `counts[true class][predicted class]`.
pub struct Confusion<'a> {
    /// What the matrix is of (model and split).
    pub title: String,
    /// `counts[true class][predicted class]`.
    pub counts: &'a [Vec<usize>],
}

/// Confusion matrices side by side in one PNG file, each cell shaded by the fraction of its
/// true class it holds and labelled with its count and that fraction.
pub fn save_confusions(
    path: &Path,
    title: &str,
    classes: &[&str],
    matrices: &[Confusion<'_>],
) -> DrawResult {
    register_font();
    let columns = matrices.len().clamp(1, 2);
    let rows = matrices.len().div_ceil(columns);
    let side = 480u32;
    let size = ((side * columns as u32).max(720), side * rows as u32 + 50);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 24))?;
    let n = classes.len().max(1);
    for (matrix, area) in matrices.iter().zip(root.split_evenly((rows, columns))) {
        // n segments: `into_segmented` over 0..=n−1
        let mut chart = ChartBuilder::on(&area)
            .caption(&matrix.title, ("sans-serif", 19))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(90)
            .build_cartesian_2d((0..n - 1).into_segmented(), (0..n - 1).into_segmented())?;
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => classes.get(*i).map_or(String::new(), |c| c.to_string()),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_label_formatter(&label)
            .y_label_formatter(&|v| match v {
                // true classes from the top down
                SegmentValue::CenterOf(i) if *i < n => label(&SegmentValue::CenterOf(n - 1 - i)),
                _ => String::new(),
            })
            .x_desc("predicted")
            .y_desc("true")
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 17))
            .draw()?;
        for (t, row) in matrix.counts.iter().enumerate() {
            let total = row.iter().sum::<usize>().max(1) as f64;
            for (p, &count) in row.iter().enumerate() {
                let fraction = count as f64 / total;
                let y = n - 1 - t;
                let shade = RGBColor(
                    (255.0 - 224.0 * fraction) as u8,
                    (255.0 - 136.0 * fraction) as u8,
                    (255.0 - 75.0 * fraction) as u8,
                );
                chart.draw_series(std::iter::once(Rectangle::new(
                    [
                        (SegmentValue::Exact(p), SegmentValue::Exact(y)),
                        (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1)),
                    ],
                    shade.filled(),
                )))?;
                let colour = if fraction > 0.5 { WHITE } else { BLACK };
                let centre = (SegmentValue::CenterOf(p), SegmentValue::CenterOf(y));
                // the count above the centre, the share of the true class below it
                for (text, size, vertical) in [
                    (count.to_string(), 22, VPos::Bottom),
                    (format!("{:.1}%", 100.0 * fraction), 17, VPos::Top),
                ] {
                    let style = ("sans-serif", size)
                        .into_font()
                        .color(&colour)
                        .pos(Pos::new(HPos::Center, vertical));
                    chart.draw_series(std::iter::once(Text::new(text, centre.clone(), style)))?;
                }
            }
        }
    }
    root.present()?;
    Ok(())
}

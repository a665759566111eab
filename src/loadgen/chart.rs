//! A PNG of a load test: latency percentiles second by second on the left, the latency
//! distribution (share of requests at or below each latency) on the right. The font is
//! compiled in, so the chart draws the same in a distroless container as on a laptop.

use std::sync::OnceLock;

use plotters::{
    prelude::*,
    style::{FontStyle, register_font},
};

use super::{Report, report::ms};

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChartError {
    #[error("a chart of {0}x{1} pixels is outside 400x300..=4000x4000")]
    Size(u32, u32),
    #[error("the embedded chart font cannot be read")]
    Font,
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the chart as PNG failed: {0}")]
    Encode(String),
}

fn draw(e: impl std::fmt::Display) -> ChartError {
    ChartError::Draw(e.to_string())
}

fn font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    match REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok()) {
        true => Ok(()),
        false => Err(ChartError::Font),
    }
}

/// Renders `report` as a `width` x `height` PNG titled `title`.
pub fn render(report: &Report, title: &str, width: u32, height: u32) -> Result<Vec<u8>, ChartError> {
    if !(400..=4000).contains(&width) || !(300..=4000).contains(&height) {
        return Err(ChartError::Size(width, height));
    }
    font()?;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw)?;
        let subtitle = format!(
            "{} {} | {:.1} req/s answered | p50 {} p99 {} max {} | errors {:.2}%",
            report.method,
            report.url,
            report.achieved_rate(),
            ms(report.percentile(0.5)),
            ms(report.percentile(0.99)),
            ms(report.max()),
            report.error_ratio() * 100.0
        );
        let (head, body) = root.split_vertically(56);
        head.draw(&Text::new(title.to_owned(), (12, 6), (FAMILY, 22).into_font()))
            .map_err(draw)?;
        head.draw(&Text::new(
            subtitle,
            (12, 32),
            (FAMILY, 14).into_font().color(&BLACK.mix(0.7)),
        ))
        .map_err(draw)?;
        let (left, right) = body.split_horizontally(width / 2);
        over_time(&left, report)?;
        distribution(&right, report)?;
        root.present().map_err(draw)?;
    }
    encode(&rgb, width, height)
}

fn over_time(area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>, report: &Report) -> Result<(), ChartError> {
    let last_second = (report.seconds.len() as u32).saturating_sub(1).max(1);
    let series = |q: f64| -> Vec<(u32, f64)> {
        report
            .seconds
            .iter()
            .filter(|s| s.latency.count() > 0)
            .map(|s| (s.second, s.latency.quantile_us(q) as f64 / 1000.0))
            .collect()
    };
    let lines = [(0.5, "p50", BLUE), (0.9, "p90", GREEN), (0.99, "p99", RED)];
    let top = report
        .seconds
        .iter()
        .map(|s| s.latency.quantile_us(0.99) as f64 / 1000.0)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption("latency percentiles per second", (FAMILY, 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0u32..last_second, 0f64..top)
        .map_err(draw)?;
    chart
        .configure_mesh()
        .x_desc("second")
        .y_desc("ms")
        .label_style((FAMILY, 12))
        .draw()
        .map_err(draw)?;
    for (q, label, color) in lines {
        chart
            .draw_series(LineSeries::new(series(q), color.stroke_width(2)))
            .map_err(draw)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 12))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(draw)?;
    Ok(())
}

fn distribution(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    report: &Report,
) -> Result<(), ChartError> {
    let total = report.latency.count().max(1) as f64;
    let mut seen = 0u64;
    let mut points = vec![(0.0, 0.0)];
    for (us, n) in report.latency.buckets() {
        seen += n;
        points.push((us as f64 / 1000.0, seen as f64 * 100.0 / total));
    }
    let right = (report.latency.max_us() as f64 / 1000.0).max(1.0) * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption("latency distribution", (FAMILY, 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0f64..right, 0f64..100.0)
        .map_err(draw)?;
    chart
        .configure_mesh()
        .x_desc("ms")
        .y_desc("% of requests at or below")
        .label_style((FAMILY, 12))
        .draw()
        .map_err(draw)?;
    chart
        .draw_series(LineSeries::new(points, BLUE.stroke_width(2)))
        .map_err(draw)?;
    Ok(())
}

fn encode(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| ChartError::Encode(e.to_string()))?;
    writer
        .write_image_data(rgb)
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    writer.finish().map_err(|e| ChartError::Encode(e.to_string()))?;
    Ok(out)
}

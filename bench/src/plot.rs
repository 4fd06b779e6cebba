//! `bench.svg`: throughput against client concurrency, one panel per operation, one line per system (log scales);
//! the in-process protocol, which does not depend on the client's concurrency, is a dashed level.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use super::{
    report::{sig, Report, Row, System},
    workload::Operation,
};

/// The lines of a panel, in legend order, with their colours.
const SERIES: [(&str, RGBColor); 4] = [
    ("vHSM native", RGBColor(0x1f, 0x77, 0xb4)),
    ("vHSM PKCS#11", RGBColor(0xff, 0x7f, 0x0e)),
    ("SoftHSM PKCS#11", RGBColor(0x2c, 0xa0, 0x2c)),
    ("single key", RGBColor(0x94, 0x67, 0xbd)),
];
const PROTOCOL_COLOUR: RGBColor = RGBColor(0xd6, 0x27, 0x28);

/// Which line a row belongs to (`None`: the in-process protocol level).
fn series_of(row: &Row) -> Option<&'static str> {
    match (row.system, row.path) {
        (System::Vhsm, Some("native")) => Some("vHSM native"),
        (System::Vhsm, _) => Some("vHSM PKCS#11"),
        (System::SoftHsm, _) => Some("SoftHSM PKCS#11"),
        (System::SingleKey, _) => Some("single key"),
        (System::InProcessProtocol, _) => None,
    }
}

/// Height of the legend strip under the panels.
const LEGEND_HEIGHT: u32 = 44;

/// Writes the plot of `report` to `path`.
pub fn write_svg(path: &Path, report: &Report) -> anyhow::Result<()> {
    let ops = &report.settings.operations;
    let cols = ops.len().clamp(1, 3);
    let rows = ops.len().div_ceil(cols).max(1);
    let size = (480 * cols as u32, 340 * rows as u32 + 40 + LEGEND_HEIGHT);
    let root = SVGBackend::new(path, size).into_drawing_area();
    let fail = |e: &dyn std::fmt::Debug| anyhow!("cannot draw {}: {e:?}", path.display());
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let title = format!(
        "vhsm bench: throughput (ops/s, log scale) against client concurrency — {} cores, {}, {}",
        report.machine.cores, report.machine.cpu_model, report.date
    );
    let root = root
        .titled(&title, ("sans-serif", 18))
        .map_err(|e| fail(&e))?;
    let (panels, legend) = root.split_vertically(size.1 - 40 - LEGEND_HEIGHT);
    for (op, area) in ops.iter().zip(panels.split_evenly((rows, cols)).iter()) {
        draw_panel(area, report, *op).map_err(|e| fail(&e))?;
    }
    draw_legend(&legend).map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>>;

/// One legend for every panel, in a row under them.
fn draw_legend(area: &Area<'_>) -> DrawResult {
    let entries = SERIES
        .iter()
        .map(|(name, colour)| (name.to_string(), *colour, false))
        .chain(std::iter::once((
            "the cluster's protocol, 2-of-3 in-process on all cores".to_string(),
            PROTOCOL_COLOUR,
            true,
        )));
    let (mut x, y) = (20i32, 18i32);
    for (name, colour, dashed) in entries {
        let style = colour.stroke_width(2);
        if dashed {
            area.draw(&PathElement::new(vec![(x, y), (x + 9, y)], style))?;
            area.draw(&PathElement::new(vec![(x + 15, y), (x + 24, y)], style))?;
        } else {
            area.draw(&PathElement::new(vec![(x, y), (x + 24, y)], style))?;
            area.draw(&Circle::new((x + 12, y), 3, colour.filled()))?;
        }
        area.draw(&Text::new(
            name.clone(),
            (x + 30, y - 7),
            ("sans-serif", 13),
        ))?;
        x += 30 + 7 * name.len() as i32 + 24;
    }
    Ok(())
}

fn draw_panel(area: &Area<'_>, report: &Report, op: Operation) -> DrawResult {
    let rows: Vec<&Row> = report
        .rows
        .iter()
        .filter(|r| r.operation == op && r.ops_per_second > 0.0)
        .collect();
    let concurrencies = &report.settings.concurrency;
    let throughputs: Vec<f64> = rows.iter().map(|r| r.ops_per_second).collect();
    let (Some(y_min), Some(y_max), false) = (
        throughputs.iter().copied().reduce(f64::min),
        throughputs.iter().copied().reduce(f64::max),
        concurrencies.is_empty(),
    ) else {
        area.draw(&Text::new(
            format!("{}: no measurement", op.name()),
            (20, 40),
            ("sans-serif", 16),
        ))?;
        return Ok(());
    };
    let position = |c: usize| concurrencies.iter().position(|x| *x == c);
    let (y0, y1) = (y_min / 3.0, y_max * 3.0);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{} — {}", op.name(), short_title(op)),
            ("sans-serif", 15),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(
            // An integer range is inclusive here: one segment per concurrency.
            (0..concurrencies.len() - 1).into_segmented(),
            (y0..y1).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("client concurrency")
        .y_desc("ops/s")
        .light_line_style(RGBColor(0xf0, 0xf0, 0xf0))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => concurrencies
                .get(*i)
                .map_or_else(String::new, |c| c.to_string()),
            _ => String::new(),
        })
        .y_label_formatter(&|y| sig(*y))
        .draw()?;
    for (name, colour) in SERIES {
        let mut points: Vec<(usize, f64)> = rows
            .iter()
            .filter(|r| series_of(r) == Some(name))
            .filter_map(|r| Some((position(r.concurrency?)?, r.ops_per_second)))
            .collect();
        points.sort_by_key(|p| p.0);
        let points: Vec<(SegmentValue<usize>, f64)> = points
            .into_iter()
            .map(|(i, y)| (SegmentValue::CenterOf(i), y))
            .collect();
        chart.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?;
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, colour.filled())),
        )?;
    }
    if let Some(level) = rows
        .iter()
        .find(|r| r.system == System::InProcessProtocol)
        .map(|r| r.ops_per_second)
    {
        chart.draw_series(DashedLineSeries::new(
            vec![(SegmentValue::Exact(0), level), (SegmentValue::Last, level)],
            8,
            5,
            PROTOCOL_COLOUR.stroke_width(2),
        ))?;
    }
    Ok(())
}

/// The operation in a few words, for a panel's caption.
fn short_title(op: Operation) -> &'static str {
    match op {
        Operation::Ed25519 => "Ed25519 sign",
        Operation::EcdsaP256 => "ECDSA P-256 sign",
        Operation::EcdsaSecp256k1 => "ECDSA secp256k1 sign",
        Operation::Aes32 => "encrypt 32 B",
        Operation::Aes1k => "encrypt 1 KiB",
    }
}

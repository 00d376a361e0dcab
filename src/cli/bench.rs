//! `adjit bench`: the table, the JSON and the picture.

use super::measure::{human, human_bytes, Report};
use super::{CliError, CliResult};
use adjit::ad::HvpMode;
use plotters::prelude::*;
use serde_json::{json, Value as Json};
use std::path::Path;

pub fn table(reports: &[Report]) -> String {
    let header = [
        "model",
        "insts f/grad/hvp",
        "compile",
        "interp f",
        "interp grad",
        "interp hvp",
        "jit f",
        "jit grad",
        "jit hvp",
        "speed-up",
        "grad/f",
        "hvp/grad",
        "fwdrev/grad",
        "revrev/grad",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in reports {
        let t = |x: &super::measure::Timing| {
            if x.spread > 0.1 {
                format!("{} ±{:.0}%", human(x.median), 50.0 * x.spread)
            } else {
                human(x.median)
            }
        };
        rows.push(vec![
            r.model.clone(),
            format!(
                "{}/{}/{}",
                r.instructions_f, r.instructions_grad, r.instructions_hvp
            ),
            human(r.compile_s),
            t(&r.interp[0]),
            t(&r.interp[1]),
            t(&r.interp[2]),
            t(&r.jit[0]),
            t(&r.jit[1]),
            t(&r.jit[2]),
            format!("{:.1}x", r.speedup()),
            format!("{:.2}", r.grad_over_f()),
            format!("{:.2}", r.hvp_over_grad()),
            format!("{:.2}", r.hvp_mode_over_grad(HvpMode::FwdRev)),
            format!("{:.2}", r.hvp_mode_over_grad(HvpMode::RevRev)),
        ]);
    }
    let header = ["model", "workspace f", "workspace grad", "workspace hvp"];
    let mut memory: Vec<Vec<String>> = vec![header.map(String::from).to_vec()];
    for r in reports {
        let mut row = vec![r.model.clone()];
        row.extend(r.workspace_bytes.map(human_bytes));
        memory.push(row);
    }
    let mut out = aligned(&rows);
    out.push('\n');
    out.push_str(&aligned(&memory));
    out.push_str(&format!(
        "\ntimes are medians per call; compile = text to callable f+grad (parse, differentiate, simplify, compile);\n\
         speed-up = interpreter over compiled f+grad; +-x% = spread of the middle half of the samples where above 10%;\n\
         hvp = the default mode ({}); fwdrev/grad, revrev/grad = compiled hvp in each mode over compiled f+grad;\n\
         workspace = the compiled function's scratch memory (constants included), one per calling thread\n",
        HvpMode::DEFAULT
    ));
    out
}

/// Rows as columns, the first left-aligned and the rest right-aligned, the header (first
/// row) underlined.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c == 0 {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            out.push_str(
                &"-".repeat(widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1)),
            );
            out.push('\n');
        }
    }
    out
}

pub fn to_json(reports: &[Report]) -> Json {
    Json::Array(
        reports
            .iter()
            .map(|r| {
                json!({
                    "model": r.model,
                    "instructions_f": r.instructions_f,
                    "instructions_grad": r.instructions_grad,
                    "instructions_hvp": r.instructions_hvp,
                    "compile_s": r.compile_s,
                    "compile_hvp_s": r.compile_hvp_s,
                    "interp_f_s": r.interp[0].median,
                    "interp_grad_s": r.interp[1].median,
                    "interp_hvp_s": r.interp[2].median,
                    "jit_f_s": r.jit[0].median,
                    "jit_grad_s": r.jit[1].median,
                    "jit_hvp_s": r.jit[2].median,
                    "jit_hvp_fwdrev_s": mode_time(r, HvpMode::FwdRev),
                    "jit_hvp_revrev_s": mode_time(r, HvpMode::RevRev),
                    "hvp_mode": HvpMode::DEFAULT.name(),
                    "workspace_bytes_f": r.workspace_bytes[0],
                    "workspace_bytes_grad": r.workspace_bytes[1],
                    "workspace_bytes_hvp": r.workspace_bytes[2],
                    "spread": {
                        "interp_f": r.interp[0].spread, "interp_grad": r.interp[1].spread, "interp_hvp": r.interp[2].spread,
                        "jit_f": r.jit[0].spread, "jit_grad": r.jit[1].spread, "jit_hvp": r.jit[2].spread,
                    },
                })
            })
            .collect(),
    )
}

fn mode_time(r: &Report, mode: HvpMode) -> f64 {
    let t = r.jit_hvp_modes.iter().find(|(m, _)| *m == mode);
    t.map_or(f64::NAN, |(_, t)| t.median)
}

/// Fails unless `path` can be written, leaving the file as it was: run before measuring, so
/// that a bad `--plot` path fails at once rather than after the whole run.
pub fn check_writable(path: &Path) -> CliResult<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| CliError(format!("{}: cannot draw the plot: {e}", path.display())))?;
    if !existed {
        // Only probed: the plot is written after measuring.
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Bars of time per call (log scale): for each model, interpreter and compiled code for f,
/// f+grad and hvp.
pub fn plot(reports: &[Report], path: &Path) -> CliResult<()> {
    let fail = |e: &dyn std::fmt::Display| {
        CliError(format!("{}: cannot draw the plot: {e}", path.display()))
    };
    let all: Vec<f64> = reports
        .iter()
        .flat_map(|r| r.interp.iter().chain(r.jit.iter()).map(|t| t.median))
        .collect();
    let lo = all.iter().cloned().fold(f64::INFINITY, f64::min).max(1e-12) / 3.0;
    let hi = all.iter().cloned().fold(0.0f64, f64::max).max(lo * 10.0) * 3.0;
    let width = (160 * reports.len() as u32 + 160).max(600);
    let root = SVGBackend::new(path, (width, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "adjit: time per call, tape interpreter vs compiled code (log scale)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..reports.len() as f64, (lo..hi).log_scale())
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("seconds per call")
        .y_label_formatter(&|v| human(*v))
        .draw()
        .map_err(|e| fail(&e))?;
    const COLORS: [(&str, RGBColor); 6] = [
        ("interpreter f", RGBColor(190, 200, 230)),
        ("compiled f", RGBColor(60, 90, 170)),
        ("interpreter f+grad", RGBColor(240, 200, 160)),
        ("compiled f+grad", RGBColor(210, 110, 30)),
        ("interpreter hvp", RGBColor(190, 225, 190)),
        ("compiled hvp", RGBColor(40, 140, 60)),
    ];
    for (k, &(label, color)) in COLORS.iter().enumerate() {
        let bars = reports.iter().enumerate().map(move |(i, r)| {
            let t = if k % 2 == 0 {
                r.interp[k / 2].median
            } else {
                r.jit[k / 2].median
            };
            let x0 = i as f64 + 0.08 + k as f64 * 0.14;
            Rectangle::new([(x0, lo), (x0 + 0.13, t.max(lo))], color.filled())
        });
        chart
            .draw_series(bars)
            .map_err(|e| fail(&e))?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    // Model names under the axis, centred under each group of bars.
    for (i, r) in reports.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, lo));
        let label = Text::new(
            r.model.clone(),
            (x - 4 * r.model.len() as i32, y + 10),
            ("sans-serif", 15).into_font().color(&BLACK),
        );
        root.draw(&label).map_err(|e| fail(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writability_probe_changes_nothing() {
        let dir = std::env::temp_dir().join(format!("adjit-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fresh = dir.join("fresh.svg");
        check_writable(&fresh).unwrap();
        assert!(!fresh.exists(), "the probe left {}", fresh.display());
        let old = dir.join("old.svg");
        std::fs::write(&old, "kept").unwrap();
        check_writable(&old).unwrap();
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "kept");
        let bad = dir.join("missing/x.svg");
        let e = check_writable(&bad).unwrap_err().0;
        assert!(e.contains("missing/x.svg: cannot draw the plot"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}

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
        "jit hvp+grad",
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
            t(&r.jit_hvp_with_grad),
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
         hvp = H v alone (as JAX's jvp(grad(f))[1] computes it) in the default mode ({});\n\
         hvp+grad = value, gradient and H v in one function (what `adjit hvp` prints), compiled, default mode;\n\
         fwdrev/grad, revrev/grad = compiled hvp in each mode over compiled f+grad;\n\
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
                    "jit_hvp_with_grad_s": r.jit_hvp_with_grad.median,
                    "hvp_mode": HvpMode::DEFAULT.name(),
                    // Every hvp figure but `jit_hvp_with_grad_s` is of H v alone.
                    "hvp_results": "product",
                    "workspace_bytes_f": r.workspace_bytes[0],
                    "workspace_bytes_grad": r.workspace_bytes[1],
                    "workspace_bytes_hvp": r.workspace_bytes[2],
                    "spread": {
                        "interp_f": r.interp[0].spread, "interp_grad": r.interp[1].spread, "interp_hvp": r.interp[2].spread,
                        "jit_f": r.jit[0].spread, "jit_grad": r.jit[1].spread, "jit_hvp": r.jit[2].spread,
                        "jit_hvp_with_grad": r.jit_hvp_with_grad.spread,
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

/// The legend of `plot`: each bar's label and color, in the order of `bars`.
fn legend() -> Vec<(String, RGBColor)> {
    let mut legend = vec![
        ("interpreter f".to_string(), RGBColor(190, 200, 230)),
        ("compiled f".to_string(), RGBColor(60, 90, 170)),
        ("interpreter f+grad".to_string(), RGBColor(240, 200, 160)),
        ("compiled f+grad".to_string(), RGBColor(210, 110, 30)),
        (
            format!("interpreter hvp ({})", HvpMode::DEFAULT),
            RGBColor(190, 225, 190),
        ),
    ];
    let colors = [RGBColor(40, 140, 60), RGBColor(140, 60, 160)];
    for (mode, color) in HvpMode::ALL.into_iter().zip(colors) {
        let default = if mode == HvpMode::DEFAULT {
            " (default)"
        } else {
            ""
        };
        legend.push((format!("compiled hvp {mode}{default}"), color));
    }
    legend
}

/// One model's bars, as `legend` lists them: interpreter and compiled f and f+grad, the
/// interpreter's hvp (the default mode), the compiled hvp in each mode.
fn bars(r: &Report) -> Vec<f64> {
    let mut bars: Vec<f64> = (0..3)
        .flat_map(|k| [r.interp[k].median, r.jit[k].median])
        .collect();
    bars.pop();
    bars.extend(HvpMode::ALL.map(|m| mode_time(r, m)));
    bars
}

/// Bars of time per call (log scale): for each model, interpreter and compiled code for f,
/// f+grad and hvp, the compiled hvp in both modes; the legend in a column on the right.
pub fn plot(reports: &[Report], path: &Path) -> CliResult<()> {
    let fail = |e: &dyn std::fmt::Display| {
        CliError(format!("{}: cannot draw the plot: {e}", path.display()))
    };
    let (legend, times) = (legend(), reports.iter().map(bars).collect::<Vec<_>>());
    let all = times.iter().flatten().filter(|t| t.is_finite());
    let lo = all.clone().fold(f64::INFINITY, |a, &b| a.min(b)).max(1e-12) / 3.0;
    let hi = all.fold(0.0f64, |a, &b| a.max(b)).max(lo * 10.0) * 3.0;
    let width = (180 * reports.len() as u32 + 160).max(600);
    let root = SVGBackend::new(path, (width + 260, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (left, right) = root.split_horizontally(width);
    let mut chart = ChartBuilder::on(&left)
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
    // Seven bars of 0.11 in each model's unit, 0.08 from either side.
    for (k, (_, color)) in legend.iter().enumerate() {
        let bars = times.iter().enumerate().map(|(i, t)| {
            let x0 = i as f64 + 0.08 + k as f64 * 0.12;
            Rectangle::new([(x0, lo), (x0 + 0.11, t[k].max(lo))], color.filled())
        });
        chart.draw_series(bars).map_err(|e| fail(&e))?;
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
    for (k, (label, color)) in legend.iter().enumerate() {
        let y = 60 + 24 * k as i32;
        let swatch = Rectangle::new([(10, y), (24, y + 12)], color.filled());
        right.draw(&swatch).map_err(|e| fail(&e))?;
        let font = ("sans-serif", 15).into_font().color(&BLACK);
        right
            .draw(&Text::new(label.clone(), (32, y - 1), font))
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::measure::Timing;
    use super::*;

    /// A report whose compiled hvp takes `fwdrev` and `revrev` seconds in the two modes.
    fn report(model: &str, fwdrev: f64, revrev: f64) -> Report {
        let t = |median| Timing {
            median,
            spread: 0.0,
        };
        let default = if HvpMode::DEFAULT == HvpMode::FwdRev {
            fwdrev
        } else {
            revrev
        };
        Report {
            model: model.to_string(),
            instructions_f: 1,
            instructions_grad: 2,
            instructions_hvp: 3,
            compile_s: 1e-3,
            compile_hvp_s: 1e-3,
            interp: [t(1e-6), t(2e-6), t(4e-6)],
            jit: [t(1e-7), t(2e-7), t(default)],
            workspace_bytes: [0; 3],
            jit_hvp_modes: [(HvpMode::FwdRev, t(fwdrev)), (HvpMode::RevRev, t(revrev))],
            jit_hvp_with_grad: t(2.0 * default),
        }
    }

    /// The heights of the SVG's rectangles filled with `color`, in drawing order.
    fn heights(svg: &str, color: RGBColor) -> Vec<f64> {
        let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
        let attr = |rect: &str, name: &str| -> f64 {
            let start = rect.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
            let len = rect[start..].find('"').unwrap();
            rect[start..start + len].parse().unwrap()
        };
        svg.split("<rect")
            .skip(1)
            .map(|r| &r[..r.find('>').unwrap()])
            .filter(|r| r.contains(&fill))
            .map(|r| attr(r, "height"))
            .collect()
    }

    #[test]
    fn the_plot_has_a_bar_per_hvp_mode_and_a_legend() {
        let path = std::env::temp_dir().join(format!("adjit-plot-{}.svg", std::process::id()));
        // On "a" fwdrev is the faster, on "b" revrev.
        let reports = [report("a", 3e-7, 9e-7), report("b", 8e-7, 4e-7)];
        plot(&reports, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        let legend = legend();
        assert_eq!(legend.len(), 7);
        let default = HvpMode::DEFAULT;
        for label in [
            format!("interpreter hvp ({default})"),
            format!("compiled hvp {default} (default)"),
            "compiled hvp fwdrev".to_string(),
            "compiled hvp revrev".to_string(),
        ] {
            assert!(svg.contains(&label), "{label}: {svg}");
        }
        // Per mode: a bar per model, then the legend's swatch (12 high).
        let fwdrev = heights(&svg, legend[5].1);
        let revrev = heights(&svg, legend[6].1);
        assert!(legend[5].0.contains("fwdrev") && legend[6].0.contains("revrev"));
        assert_eq!((fwdrev.len(), revrev.len()), (3, 3), "{svg}");
        assert_eq!((fwdrev[2], revrev[2]), (12.0, 12.0));
        assert!(
            fwdrev[0] < revrev[0] && fwdrev[1] > revrev[1],
            "{fwdrev:?} {revrev:?}"
        );
    }

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

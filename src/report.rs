//! `pilotlight report [EXECUTION] [--json | --html FILE]`: the report of an execution, built by notify's own
//! `report::build` from the execution's history (`operator::report_of`): timeline, RTO, RPO and its basis, every
//! change, warnings.

use std::process::ExitCode;

use pilotlight::operator::report_of;
use pilotlight::steps::notify::report::{Report, html};

use crate::connect::{AwsArgs, Session};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    aws: AwsArgs,
    /// The execution (name or ARN); default: the latest.
    execution: Option<String>,
    /// The report as notify builds it, one JSON object.
    #[arg(long, conflicts_with = "html")]
    json: bool,
    /// Write the report as one self-contained HTML page (inline CSS and SVG: the timeline chart, RTO marked) to FILE,
    /// for an incident review.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
}

pub async fn run(a: Args) -> Result<ExitCode, String> {
    let s = Session::open(&a.aws).await?;
    let arn = s.execution(a.execution.as_deref(), false).await?;
    let (execution, report) = report_of(s.ctx.aws.sfn(), &arn)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(file) = &a.html {
        std::fs::write(file, html::render(&report))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        println!(
            "{}: the report of {} ({}) as HTML",
            file.display(),
            execution.name,
            execution.status
        );
        return Ok(ExitCode::SUCCESS);
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("execution  {} {}", execution.name, execution.status);
    for l in summary_lines(&report) {
        println!("{l}");
    }
    println!("timeline:");
    for t in &report.timeline {
        println!(
            "  {:<26} {:>7.2}s  {:>2} call{}  done={:<5}  {}",
            t.step,
            t.seconds,
            t.calls,
            if t.calls == 1 { " " } else { "s" },
            t.done,
            t.message
        );
    }
    println!("changes ({}):", report.changes.len());
    for c in &report.changes {
        println!(
            "  {}  {}  {}: {} -> {}",
            if c.applied { "applied" } else { "planned" },
            c.resource,
            c.field,
            c.from,
            c.to
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The headline of a report: summary, outcome, RTO, RPO and its basis, warnings.
pub fn summary_lines(r: &Report) -> Vec<String> {
    let mut out = vec![
        format!("summary    {}", r.summary),
        format!(
            "outcome    {}{}",
            r.outcome,
            r.error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ),
        format!(
            "RTO        {}",
            match r.rto_seconds {
                Some(s) => format!("{s:.1} s (trigger -> traffic shifted)"),
                None if r.dry_run => "n/a (dry-run: nothing moved)".to_string(),
                None => "n/a (the shift did not complete)".to_string(),
            }
        ),
        format!(
            "RPO        {}{}",
            r.rpo_seconds
                .map(|s| format!("{s} s"))
                .unwrap_or_else(|| "n/a".to_string()),
            r.rpo_rule
                .as_deref()
                .map(|b| format!(" (basis: {b})"))
                .unwrap_or_default()
        ),
    ];
    for w in &r.warnings {
        out.push(format!("warning    {w}"));
    }
    if let Some(w) = r.fence.as_ref().and_then(|f| f.warning.as_ref()) {
        out.push(format!("warning    {w}"));
    }
    out
}

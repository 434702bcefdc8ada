//! `pilotlight follow [EXECUTION]` (and the end of failover / failback / approve): the execution followed live,
//! one line per step as it starts and finishes with the time since the start (`operator::progress`), a spinner
//! with the current poll state on a terminal (indicatif), plain lines otherwise. Ctrl-C stops following, never the
//! execution: it runs in Step Functions, and `pilotlight follow` re-attaches.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pilotlight::aws::stepfunctions::{execution_events, execution_view};
use pilotlight::operator::progress::{Progress, ProgressLine};
use pilotlight::operator::report_of;

use crate::connect::{AwsArgs, Session, execution_name};
use crate::report::summary_lines;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    aws: AwsArgs,
    /// The execution (name or ARN); default: the running one, else the latest.
    execution: Option<String>,
}

pub async fn run(a: Args) -> Result<ExitCode, String> {
    let s = Session::open(&a.aws).await?;
    let arn = s.execution(a.execution.as_deref(), false).await?;
    follow(&s, &arn).await
}

/// How often the history is read: a step takes seconds, and Step Functions' history calls are cheap.
const POLL: Duration = Duration::from_secs(1);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    // Async-signal-safe: only a flag; the follow loop sees it within a tick.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// SIGINT ends the follow loop instead of the process, so the operator is told the execution goes on.
fn catch_interrupt() {
    let handler = on_interrupt as extern "C" fn(libc::c_int);
    // SAFETY: installs a handler that only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

/// Where lines go: above a spinner on a terminal, plain otherwise.
enum View {
    Terminal(ProgressBar),
    Plain,
}

impl View {
    fn new() -> View {
        if !std::io::stdout().is_terminal() {
            return View::Plain;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        View::Terminal(bar)
    }

    fn line(&self, text: &str) {
        match self {
            View::Terminal(bar) => bar.println(text),
            View::Plain => println!("{text}"),
        }
    }

    fn state(&self, state: Option<&str>) {
        if let View::Terminal(bar) = self {
            bar.set_message(state.unwrap_or("").to_string());
        }
    }

    fn done(&self) {
        if let View::Terminal(bar) = self {
            bar.finish_and_clear();
        }
    }
}

fn format(l: &ProgressLine) -> String {
    format!(
        "{}  +{:>6.1}s  {}",
        l.at.format("%H:%M:%S"),
        l.elapsed,
        l.text
    )
}

/// Follows `arn` until it ends (exit 0 when it SUCCEEDED) or the operator presses Ctrl-C (exit 130).
pub async fn follow(s: &Session, arn: &str) -> Result<ExitCode, String> {
    catch_interrupt();
    let sfn = s.ctx.aws.sfn();
    let name = execution_name(arn);
    let mut progress = Progress::new(name);
    let view = View::new();
    view.line(&format!(
        "following {name} (Ctrl-C stops following, not the execution)"
    ));
    let mut seen = 0;
    let status = loop {
        // Status first: once it is no longer RUNNING, the history read after it is complete.
        let execution = execution_view(sfn, arn).await.map_err(|e| e.to_string())?;
        let events = execution_events(sfn, arn)
            .await
            .map_err(|e| e.to_string())?;
        for l in progress.feed(events.get(seen..).unwrap_or_default()) {
            view.line(&format(&l));
        }
        seen = events.len();
        view.state(progress.current());
        if execution.status != "RUNNING" {
            break execution.status;
        }
        let mut waited = Duration::ZERO;
        while waited < POLL && !INTERRUPTED.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            view.done();
            println!(
                "stopped following {name}; the execution goes on (re-attach: pilotlight follow {name})"
            );
            return Ok(ExitCode::from(130));
        }
    };
    view.done();
    match report_of(sfn, arn).await {
        Ok((_, report)) => {
            for l in summary_lines(&report) {
                println!("{l}");
            }
        }
        Err(e) => println!("report: not built ({e}); `pilotlight report {name}` retries"),
    }
    Ok(if status == "SUCCEEDED" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

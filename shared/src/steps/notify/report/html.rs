//! The execution report as one self-contained HTML page, for an incident review: title and outcome, RTO and RPO
//! with their basis, a timeline chart (an inline SVG Gantt: one row per phase, every call of it drawn so polls show,
//! side-by-side branches as rows overlapping in time, the trigger and the RTO marked, an axis in seconds), every
//! change, the warnings, the overrides and the fence outcomes.
//!
//! Self-contained on purpose: the file is attached to a ticket or mailed and opened years later, offline, so it
//! references nothing (no scripts, fonts, images, style sheets or links) and works without JavaScript (tooltips
//! are SVG `<title>`s, details are `<details>`). Everything taken from the report is HTML-escaped: resource names,
//! messages and errors come from AWS and from operators. Pure: a [`Report`] in, the page out.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::{Report, StepTimeline};
use crate::fence::FenceStatus;

/// Chart geometry, in SVG user units (the SVG scales to the page's width).
const WIDTH: f64 = 1200.0;
/// The left column: the side-by-side tag and the phase names.
const LABEL_W: f64 = 290.0;
/// Room right of the plot for the last bar's duration label.
const RIGHT_PAD: f64 = 110.0;
const ROW_H: f64 = 32.0;
/// Above the rows: the markers' labels.
const TOP: f64 = 34.0;
/// Below the rows: the axis, its ticks and its title.
const AXIS_H: f64 = 46.0;
const PLOT_W: f64 = WIDTH - LABEL_W - RIGHT_PAD;

/// The page for `report`.
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let title = format!(
        "{} {}: {}",
        flow_label(report),
        report.outcome,
        report.execution
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\">\n<title>pilotlight report: {}</title>\n<style>{CSS}</style>\n\
         </head>\n<body>\n",
        escape(&title)
    );
    header(&mut out, report);
    objectives(&mut out, report);
    timeline(&mut out, report);
    warnings(&mut out, report);
    changes(&mut out, report);
    fence(&mut out, report);
    overrides(&mut out, report);
    out.push_str(
        "<footer>pilotlight execution report. This file is self-contained: it loads nothing from elsewhere.\
         </footer>\n</body>\n</html>\n",
    );
    out
}

/// Text made safe for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// "ungraceful failover", "graceful failback", "fence".
fn flow_label(report: &Report) -> String {
    if report.fence_only {
        return "fence".to_string();
    }
    format!("{} {}", report.mode, report.direction)
        .trim()
        .to_string()
}

/// When the trigger fired (the alarm's state change, or the manual request): the RTO counts from it.
fn triggered_at(report: &Report) -> Option<DateTime<Utc>> {
    report
        .trigger
        .get("state_change_time")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn secs(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// A JSON value as a person reads it: strings bare, null as "none", the rest compact JSON.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".to_string(),
        other => other.to_string(),
    }
}

/// The outcome badges: the outcome itself, then what qualifies it.
fn badges(report: &Report) -> Vec<(&'static str, String)> {
    let mut b = vec![(
        match report.outcome.as_str() {
            "succeeded" => "ok",
            "degraded" => "warn",
            _ => "bad",
        },
        report.outcome.to_uppercase(),
    )];
    if report.dry_run {
        b.push(("info", "DRY RUN".to_string()));
    }
    if let Some(r) = &report.rollback {
        b.push(match r.outcome.as_str() {
            "restored" => ("warn", "ROLLED BACK".to_string()),
            "failed" => ("bad", "ROLLBACK FAILED".to_string()),
            _ => ("warn", "FORWARD ONLY".to_string()),
        });
    }
    if report.fence.as_ref().is_some_and(|f| f.warning.is_some()) {
        b.push(("bad", "NOT FENCED".to_string()));
    }
    b
}

fn header(out: &mut String, report: &Report) {
    let _ = write!(
        out,
        "<header>\n<h1>{} <span class=\"outcome\">{}</span></h1>\n<p class=\"badges\">",
        escape(&flow_label(report)),
        escape(&report.outcome)
    );
    for (class, text) in badges(report) {
        let _ = write!(
            out,
            "<span class=\"badge {class}\">{}</span> ",
            escape(&text)
        );
    }
    let _ = write!(
        out,
        "</p>\n<p class=\"summary\">{}</p>\n<dl class=\"meta\">",
        escape(&report.summary)
    );
    let mut meta = |k: &str, v: String| {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(&v));
    };
    meta("execution", report.execution.clone());
    meta("flow", flow_label(report));
    let t = &report.trigger;
    let field = |k: &str| t.get(k).map(value_text).filter(|s| s != "none");
    let trigger = [
        field("source"),
        field("reason").map(|r| format!("reason: {r}")),
        t.get("alarms")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .map(|a| {
                format!(
                    "alarms: {}",
                    a.iter().map(value_text).collect::<Vec<_>>().join(", ")
                )
            }),
        triggered_at(report).map(|t| format!("at {}", time(t))),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("; ");
    meta(
        "trigger",
        if trigger.is_empty() {
            "unknown".into()
        } else {
            trigger
        },
    );
    meta("step reports", report.history.clone());
    if let Some(a) = &report.approval {
        meta("approval", value_text(a));
    }
    out.push_str("</dl>\n</header>\n");
}

/// RTO and RPO, each with what it is measured from; unknown stays a word, never a number.
fn objectives(out: &mut String, report: &Report) {
    let (rto, rto_basis) = match report.rto_seconds {
        Some(s) => (
            format!("{s:.1} s"),
            "from the trigger to the dial step that completed the traffic shift".to_string(),
        ),
        None if report.dry_run => (
            "n/a".to_string(),
            "dry run: no traffic moved, so there is no recovery time".to_string(),
        ),
        None => (
            "unknown".to_string(),
            "the traffic shift did not complete, or the trigger time is unknown".to_string(),
        ),
    };
    let (rpo, mut rpo_basis) = match report.rpo_seconds {
        Some(s) => (format!("{s:.1} s"), String::new()),
        None => (
            "unknown".to_string(),
            "no replica lag was recorded before the promotion".to_string(),
        ),
    };
    let mut basis = Vec::new();
    if let Some(rule) = &report.rpo_rule {
        basis.push(format!("rule: {rule}"));
    } else if report.rpo_seconds == Some(0.0) && report.mode == "graceful" {
        basis.push("graceful: the database caught up to lag 0 before the promotion".to_string());
    }
    if let Some(lag) = &report.replica_lag {
        basis.push(format!("replica lag as seen: {}", value_text(lag)));
    }
    if !basis.is_empty() {
        if !rpo_basis.is_empty() {
            rpo_basis.push_str("; ");
        }
        rpo_basis.push_str(&basis.join("; "));
    }
    let _ = write!(
        out,
        "<section id=\"objectives\">\n<div class=\"objective\" id=\"rto\"><h2>RTO</h2><p class=\"figure\">{}</p>\
         <p class=\"basis\">{}</p></div>\n<div class=\"objective\" id=\"rpo\"><h2>RPO</h2><p class=\"figure\">{}</p>\
         <p class=\"basis\">{}</p></div>\n</section>\n",
        escape(&rto),
        escape(&rto_basis),
        escape(&rpo),
        escape(if rpo_basis.is_empty() {
            "basis not recorded"
        } else {
            &rpo_basis
        })
    );
}

/// The chart's time scale: seconds from `origin` (the trigger, or the first call when the trigger is unknown or
/// later) to x.
struct Scale {
    origin: DateTime<Utc>,
    span: f64,
    from_trigger: bool,
}

impl Scale {
    fn of(report: &Report) -> Option<Scale> {
        let first = report.timeline.iter().map(|t| t.started_at).min()?;
        let last = report.timeline.iter().map(|t| t.finished_at).max()?;
        let trigger = triggered_at(report).filter(|t| *t <= first);
        let origin = trigger.unwrap_or(first);
        let rto_end = match (trigger, report.rto_seconds) {
            (Some(_), Some(rto)) => rto,
            _ => 0.0,
        };
        let span = secs(last - origin).max(rto_end);
        Some(Scale {
            origin,
            span: if span > 0.0 { span } else { 1.0 },
            from_trigger: trigger.is_some(),
        })
    }
    fn at(&self, t: DateTime<Utc>) -> f64 {
        secs(t - self.origin)
    }
    /// x of `s` seconds after the origin.
    fn x(&self, s: f64) -> f64 {
        LABEL_W + s / self.span * PLOT_W
    }
    /// Axis ticks: a round step giving at most 12 of them.
    fn step(&self) -> f64 {
        const STEPS: [f64; 16] = [
            0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
            1800.0, 3600.0,
        ];
        STEPS
            .into_iter()
            .find(|s| self.span / s <= 12.0)
            .unwrap_or(self.span / 12.0)
    }
}

/// The rows in chart order: start order, except that the branches of one side-by-side phase are kept together.
fn rows(report: &Report) -> Vec<&StepTimeline> {
    let mut rows: Vec<&StepTimeline> = Vec::new();
    for t in &report.timeline {
        if rows.iter().any(|r| std::ptr::eq(*r, t)) {
            continue;
        }
        match &t.side_by_side {
            Some(group) => rows.extend(
                report
                    .timeline
                    .iter()
                    .filter(|u| u.side_by_side.as_ref() == Some(group)),
            ),
            None => rows.push(t),
        }
    }
    rows
}

fn timeline(out: &mut String, report: &Report) {
    out.push_str("<section id=\"timeline\">\n<h2>Timeline</h2>\n");
    let Some(scale) = Scale::of(report) else {
        out.push_str(
            "<p class=\"none\">No step reported anything: there is no timeline.</p>\n</section>\n",
        );
        return;
    };
    gantt(out, report, &scale);
    let _ = write!(
        out,
        "<p class=\"legend\"><span class=\"key call\"></span> a call (start, status poll, loop iteration) \
         <span class=\"key call done\"></span> the call that reported done <span class=\"key span\"></span> the \
         phase, first call to last <span class=\"key band\"></span> branches that ran side by side \
         (a Parallel state) <span class=\"key rto\"></span> RTO</p>\n<p class=\"source\">{}</p>\n",
        escape(&report.history)
    );
    steps_table(out, report, &scale);
    out.push_str("</section>\n");
}

fn gantt(out: &mut String, report: &Report, scale: &Scale) {
    let rows = rows(report);
    let rows_h = rows.len() as f64 * ROW_H;
    let height = TOP + rows_h + AXIS_H;
    let _ = writeln!(
        out,
        "<svg class=\"gantt\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" role=\"img\" \
         aria-label=\"timeline of the execution's phases\">"
    );
    // Side-by-side bands, behind the rows.
    let mut i = 0;
    while i < rows.len() {
        let n = match &rows[i].side_by_side {
            Some(g) => rows[i..]
                .iter()
                .take_while(|r| r.side_by_side.as_ref() == Some(g))
                .count(),
            None => 0,
        };
        if n == 0 {
            i += 1;
            continue;
        }
        let group = rows[i].side_by_side.as_deref().unwrap_or_default();
        let y = TOP + i as f64 * ROW_H;
        let h = n as f64 * ROW_H;
        let _ = writeln!(
            out,
            "<g class=\"branches\" data-group=\"{g}\"><rect class=\"band\" x=\"4\" y=\"{y}\" width=\"{w}\" \
             height=\"{h}\" rx=\"4\"/><rect class=\"band-edge\" x=\"4\" y=\"{y}\" width=\"4\" height=\"{h}\"/>\
             <text class=\"group\" x=\"16\" y=\"{ty}\">{g} \u{2225}</text><text class=\"group-note\" x=\"16\" \
             y=\"{ny}\">{n} side by side</text></g>",
            g = escape(group),
            w = WIDTH - 8.0,
            ty = y + h / 2.0 - 2.0,
            ny = y + h / 2.0 + 12.0,
        );
        i += n;
    }
    // Grid lines and the axis.
    let step = scale.step();
    let axis_y = TOP + rows_h;
    let _ = write!(
        out,
        "<g class=\"axis\"><line x1=\"{LABEL_W}\" y1=\"{axis_y}\" x2=\"{x2}\" y2=\"{axis_y}\"/>",
        x2 = LABEL_W + PLOT_W
    );
    let mut k = 0u32;
    loop {
        let s = f64::from(k) * step;
        if s > scale.span + 1e-9 {
            break;
        }
        let x = scale.x(s);
        let label = if step < 1.0 {
            format!("{s:.1}")
        } else {
            format!("{s:.0}")
        };
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{axis_y}\"/><line x1=\"{x:.1}\" \
             y1=\"{axis_y}\" x2=\"{x:.1}\" y2=\"{ty}\"/><text class=\"tick\" x=\"{x:.1}\" y=\"{ly}\">{label}</text>",
            ty = axis_y + 5.0,
            ly = axis_y + 18.0
        );
        k += 1;
    }
    let _ = writeln!(
        out,
        "<text class=\"axis-title\" x=\"{x}\" y=\"{y}\">seconds since {}</text></g>",
        if scale.from_trigger {
            "the trigger"
        } else {
            "the first call (trigger time unknown)"
        },
        x = LABEL_W + PLOT_W / 2.0,
        y = axis_y + 38.0
    );
    // The rows.
    for (i, t) in rows.iter().enumerate() {
        let y = TOP + i as f64 * ROW_H;
        let (s, e) = (scale.at(t.started_at), scale.at(t.finished_at));
        let (x0, x1) = (scale.x(s), scale.x(e));
        let _ = write!(
            out,
            "<g class=\"row\" data-phase=\"{p}\" data-start=\"{s:.3}\" data-end=\"{e:.3}\" data-y=\"{y}\"{branch}>\
             <text class=\"label\" x=\"{lx}\" y=\"{ly}\">{p}</text><rect class=\"span\" x=\"{x0:.1}\" y=\"{sy}\" \
             width=\"{sw:.1}\" height=\"8\"><title>{p}: {s:.1}\u{2013}{e:.1} s, {calls}</title></rect>",
            p = escape(&t.step),
            branch = t
                .side_by_side
                .as_deref()
                .map(|g| format!(" data-branch=\"{}\"", escape(g)))
                .unwrap_or_default(),
            lx = LABEL_W - 10.0,
            ly = y + ROW_H / 2.0 + 4.5,
            sy = y + ROW_H / 2.0 - 4.0,
            sw = (x1 - x0).max(1.0),
            calls = calls_text(t),
        );
        for c in &t.call_spans {
            let (cs, ce) = (scale.at(c.started_at), scale.at(c.finished_at));
            let cx = scale.x(cs);
            let _ = write!(
                out,
                "<rect class=\"call{done}\" x=\"{cx:.1}\" y=\"{cy}\" width=\"{cw:.1}\" height=\"{ch}\" rx=\"1.5\">\
                 <title>{p} {a}: {cs:.2}\u{2013}{ce:.2} s{d}</title></rect>",
                done = if c.done { " done" } else { "" },
                cy = y + 7.0,
                cw = (scale.x(ce) - cx).max(3.0),
                ch = ROW_H - 14.0,
                p = escape(&t.step),
                a = escape(c.action),
                d = if c.done { ", done" } else { "" },
            );
        }
        let _ = writeln!(
            out,
            "<text class=\"dur\" x=\"{dx:.1}\" y=\"{ly}\">{secs:.1} s \u{b7} {n} call{pl}</text></g>",
            dx = x1.max(x0 + 3.0) + 6.0,
            ly = y + ROW_H / 2.0 + 4.0,
            secs = t.seconds,
            n = t.calls,
            pl = if t.calls == 1 { "" } else { "s" },
        );
    }
    // Markers, over the rows.
    if scale.from_trigger {
        let x = scale.x(0.0);
        let _ = writeln!(
            out,
            "<g class=\"marker trigger\"><line x1=\"{x:.1}\" y1=\"{y1}\" x2=\"{x:.1}\" y2=\"{axis_y}\"/>\
             <text x=\"{tx:.1}\" y=\"{ty}\">trigger</text></g>",
            y1 = TOP - 10.0,
            tx = x + 4.0,
            ty = TOP - 14.0
        );
    }
    match (scale.from_trigger, report.rto_seconds) {
        (true, Some(rto)) => {
            let x = scale.x(rto);
            // The label sits left of the line when the line is near the right edge.
            let (tx, anchor) = if x > LABEL_W + PLOT_W * 0.8 {
                (x - 6.0, "end")
            } else {
                (x + 6.0, "start")
            };
            let _ = writeln!(
                out,
                "<g class=\"marker rto\" id=\"rto-marker\" data-seconds=\"{rto:.3}\" data-x=\"{x:.1}\"><line \
                 x1=\"{x:.1}\" y1=\"{y1}\" x2=\"{x:.1}\" y2=\"{axis_y}\"/><text x=\"{tx:.1}\" y=\"{ty}\" \
                 text-anchor=\"{anchor}\">RTO {rto:.1} s</text></g>",
                y1 = TOP - 26.0,
                ty = TOP - 14.0
            );
        }
        (_, rto) => {
            let why = match rto {
                Some(s) => format!("RTO {s:.1} s (trigger time not on this chart)"),
                None if report.dry_run => "RTO n/a: dry run".to_string(),
                None => "RTO unknown".to_string(),
            };
            let _ = writeln!(
                out,
                "<text class=\"rto-none\" x=\"{x}\" y=\"{y}\" text-anchor=\"end\">{}</text>",
                escape(&why),
                x = LABEL_W + PLOT_W,
                y = TOP - 14.0
            );
        }
    }
    out.push_str("</svg>\n");
}

/// "start, status ×3" — the calls of a phase by action.
fn calls_text(t: &StepTimeline) -> String {
    let mut by_action: Vec<(&str, usize)> = Vec::new();
    for c in &t.call_spans {
        match by_action.iter_mut().find(|(a, _)| *a == c.action) {
            Some((_, n)) => *n += 1,
            None => by_action.push((c.action, 1)),
        }
    }
    by_action
        .iter()
        .map(|(a, n)| {
            if *n == 1 {
                a.to_string()
            } else {
                format!("{a} \u{d7}{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn steps_table(out: &mut String, report: &Report, scale: &Scale) {
    out.push_str(
        "<table id=\"steps\">\n<thead><tr><th>phase</th><th>side by side</th><th>started</th><th>finished</th>\
         <th>seconds</th><th>calls</th><th>done</th><th>last message</th></tr></thead>\n<tbody>\n",
    );
    for t in rows(report) {
        let _ = writeln!(
            out,
            "<tr data-phase=\"{p}\"><td>{p}</td><td>{g}</td><td>{st} <span class=\"rel\">+{s:.1} s</span></td>\
             <td>{ft} <span class=\"rel\">+{e:.1} s</span></td><td class=\"num\">{secs:.1}</td><td>{calls}</td>\
             <td>{done}</td><td>{msg}<details><summary>what it saw</summary><pre>{saw}</pre></details></td></tr>",
            p = escape(&t.step),
            g = escape(t.side_by_side.as_deref().unwrap_or("")),
            st = escape(&time(t.started_at)),
            s = scale.at(t.started_at),
            ft = escape(&time(t.finished_at)),
            e = scale.at(t.finished_at),
            secs = t.seconds,
            calls = escape(&calls_text(t)),
            done = if t.done { "yes" } else { "no" },
            msg = escape(&t.message),
            saw = escape(&serde_json::to_string_pretty(&t.saw).unwrap_or_default()),
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn warnings(out: &mut String, report: &Report) {
    let mut items: Vec<(&str, String)> = Vec::new();
    if let Some(e) = &report.error {
        items.push(("bad", format!("error: {}", super::error_text(e))));
    }
    if let Some(r) = &report.rollback {
        items.push((
            if r.outcome == "failed" { "bad" } else { "warn" },
            r.message.clone(),
        ));
    }
    for w in &report.warnings {
        items.push(("warn", w.clone()));
    }
    if let Some(w) = report.fence.as_ref().and_then(|f| f.warning.as_ref()) {
        items.push(("bad", w.clone()));
    }
    out.push_str("<section id=\"warnings\">\n<h2>Warnings</h2>\n");
    if items.is_empty() {
        out.push_str("<p class=\"none\">None.</p>\n");
    } else {
        out.push_str("<ul>\n");
        for (class, text) in items {
            let _ = writeln!(out, "<li class=\"{class}\">{}</li>", escape(&text));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

fn changes(out: &mut String, report: &Report) {
    let _ = write!(
        out,
        "<section id=\"changes\">\n<h2>Changes ({})</h2>\n",
        report.changes.len()
    );
    if report.changes.is_empty() {
        out.push_str("<p class=\"none\">Nothing was changed.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th>#</th><th>resource</th><th>field</th><th>from</th><th>to</th><th>applied</th></tr>\
         </thead>\n<tbody>\n",
    );
    for (i, c) in report.changes.iter().enumerate() {
        let _ = writeln!(
            out,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            escape(&c.resource),
            escape(&c.field),
            escape(&value_text(&c.from)),
            escape(&value_text(&c.to)),
            if c.applied {
                "yes"
            } else if report.dry_run {
                "no (dry run)"
            } else {
                "no (planned)"
            }
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn fence(out: &mut String, report: &Report) {
    let Some(f) = &report.fence else {
        return;
    };
    out.push_str("<section id=\"fence\">\n<h2>Fence of the side left</h2>\n");
    if f.outcomes.is_empty() {
        out.push_str("<p class=\"none\">No fence call reported an outcome.</p>\n");
    } else {
        out.push_str(
            "<table>\n<thead><tr><th>what</th><th>resource</th><th>region</th><th>status</th><th>detail</th></tr>\
             </thead>\n<tbody>\n",
        );
        for o in &f.outcomes {
            let class = match o.status {
                FenceStatus::Fenced | FenceStatus::AlreadyFenced => "ok",
                FenceStatus::NotFenced => "bad",
                FenceStatus::WouldFence => "info",
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
                escape(&o.what),
                escape(&o.resource),
                escape(&o.region),
                escape(o.status.as_str()),
                escape(&o.detail)
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
    out.push_str("</section>\n");
}

fn overrides(out: &mut String, report: &Report) {
    out.push_str(
        "<section id=\"overrides\">\n<h2>Overrides and preflight</h2>\n<p>Overrides in effect: ",
    );
    if report.overrides.is_empty() {
        out.push_str("none");
    } else {
        let names: Vec<String> = report
            .overrides
            .iter()
            .map(|o| format!("<code>{}</code>", escape(o)))
            .collect();
        out.push_str(&names.join(", "));
    }
    out.push_str("</p>\n");
    let list = |key: &str| {
        report
            .preflight
            .get(key)
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .cloned()
    };
    for (key, what) in [
        (
            "accepted_by_override",
            "Preflight checks that failed and were accepted by an override",
        ),
        ("findings", "Preflight findings still failing"),
        ("overrides_needed", "Overrides that would be needed"),
    ] {
        if let Some(items) = list(key) {
            let _ = write!(out, "<p>{what}:</p>\n<ul>\n");
            for item in items {
                let _ = writeln!(out, "<li><code>{}</code></li>", escape(&value_text(&item)));
            }
            out.push_str("</ul>\n");
        }
    }
    out.push_str("</section>\n");
}

const CSS: &str = "
:root { color-scheme: light; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --info: #0969da; --ink: #1f2328;
  --muted: #59636e; --line: #d1d9e0; }
* { box-sizing: border-box; }
body { font-family: system-ui, 'Segoe UI', 'DejaVu Sans', 'Liberation Sans', Arial, sans-serif; color: var(--ink);
  margin: 0 auto; padding: 18px 28px 40px; max-width: 1400px; font-size: 14px; line-height: 1.45; }
h1 { font-size: 24px; margin: 0 0 6px; }
h1 .outcome { font-weight: normal; color: var(--muted); }
h2 { font-size: 17px; margin: 22px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.badges { margin: 0 0 8px; }
.badge { display: inline-block; padding: 2px 9px; border-radius: 10px; font-weight: 600; font-size: 12px;
  color: #fff; letter-spacing: .04em; }
.badge.ok { background: var(--ok); } .badge.warn { background: var(--warn); } .badge.bad { background: var(--bad); }
.badge.info { background: var(--info); }
.summary { font-size: 15px; margin: 4px 0 10px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; color: var(--muted); }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; overflow-wrap: anywhere; }
#objectives { display: flex; gap: 16px; margin-top: 14px; }
.objective { flex: 1; border: 1px solid var(--line); border-radius: 8px; padding: 6px 14px; }
.objective h2 { border: 0; margin: 4px 0 0; font-size: 14px; color: var(--muted); }
.objective .figure { font-size: 26px; font-weight: 700; margin: 0; }
.objective .basis { margin: 2px 0 6px; color: var(--muted); overflow-wrap: anywhere; }
svg.gantt { display: block; font-size: 13px; }
svg .label { text-anchor: end; fill: var(--ink); }
svg .group { font-size: 12px; font-weight: 700; fill: #3e4c8a; }
svg .group-note { font-size: 11px; fill: var(--muted); }
svg .band { fill: #eef1fb; } svg .band-edge { fill: #8c9bd6; }
svg .span { fill: #b6c8e8; }
svg .call { fill: #3b6fc4; } svg .call.done { fill: var(--ok); }
svg .dur { font-size: 11px; fill: var(--muted); }
svg .axis line { stroke: #8b949e; } svg .axis line.grid { stroke: #e3e7ec; }
svg .tick { font-size: 11px; text-anchor: middle; fill: var(--muted); }
svg .axis-title { font-size: 12px; text-anchor: middle; fill: var(--muted); }
svg .marker line { stroke-width: 2; }
svg .trigger line { stroke: #6e7781; stroke-dasharray: 2 3; } svg .trigger text { fill: #6e7781; font-size: 12px; }
svg .rto line { stroke: var(--bad); stroke-dasharray: 6 4; } svg .rto text { fill: var(--bad); font-weight: 700; }
svg .rto-none { fill: var(--muted); font-weight: 700; }
.legend { color: var(--muted); font-size: 12px; margin: 4px 0; }
.key { display: inline-block; width: 14px; height: 10px; margin: 0 3px 0 10px; vertical-align: middle; }
.key.call { background: #3b6fc4; } .key.call.done { background: var(--ok); } .key.span { background: #b6c8e8; }
.key.band { background: #eef1fb; border-left: 3px solid #8c9bd6; } .key.rto { border-left: 2px dashed var(--bad); }
.source { color: var(--muted); font-size: 12px; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border: 1px solid var(--line); padding: 3px 7px; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.ok { color: var(--ok); font-weight: 600; } td.bad { color: var(--bad); font-weight: 600; }
td.info { color: var(--info); }
.rel { color: var(--muted); font-size: 12px; }
details summary { color: var(--muted); font-size: 12px; cursor: pointer; }
pre { margin: 4px 0; font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
#warnings li.bad { color: var(--bad); } #warnings li.warn { color: var(--warn); }
.none { color: var(--muted); }
footer { margin-top: 28px; color: var(--muted); font-size: 12px; }
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::StepReport;
    use crate::steps::notify::report::{StepHistory, build};
    use serde_json::json;

    /// A step report at `start`..`end` seconds after 10:00:00.
    fn call(step: &str, action: &str, start: f64, end: f64, done: bool, changes: Value) -> Value {
        let at = |s: f64| {
            (DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z").unwrap()
                + chrono::TimeDelta::milliseconds((s * 1000.0) as i64))
            .with_timezone(&Utc)
            .to_rfc3339()
        };
        json!({"step": step, "action": action, "direction": "failover", "dry_run": false,
               "started_at": at(start), "finished_at": at(end), "saw": {"seen": step}, "changes": changes,
               "done": done, "message": format!("{step} {action} ok")})
    }

    fn fence_call(step: &str, what: &str, status: &str, at: f64) -> Value {
        let mut c = call(step, "fence", at, at + 1.0, true, json!([]));
        c["saw"] = json!({"fence": {"what": what, "resource": format!("{what}-1"), "region": "ap-northeast-2",
                                    "status": status, "detail": "as seen"}});
        c
    }

    /// An ungraceful failover as the state machine runs it: the recover Parallel (promote-db and scale-compute
    /// side by side, each polled), the dial step, DNS and the fence.
    fn failover(fence_status: &str) -> Report {
        let dial = json!([{"resource": "eg-dr", "field": "TrafficDialPercentage", "from": 0, "to": 100, "applied": true}]);
        let mut promote = call("promote-db", "start", 2.0, 3.0, false, json!([]));
        promote["rpo_seconds"] = json!(4.0);
        promote["saw"] = json!({"rpo_rule": "lag 4 s, 10 s old, within the plan's maximum of 60 s",
                                "replica_lag": {"seconds": 4, "age_seconds": 10}});
        let history: Vec<StepReport> = [
            promote,
            call("scale-compute", "start", 2.0, 2.5, false,
                 json!([{"resource": "asg-dr", "field": "DesiredCapacity", "from": 0, "to": 2, "applied": true}])),
            call("promote-db", "status", 20.0, 20.5, false, json!([])),
            call("scale-compute", "status", 20.0, 20.4, false, json!([])),
            call("promote-db", "status", 40.0, 40.5, true, json!([])),
            call("scale-compute", "status", 40.0, 40.4, false, json!([])),
            call("scale-compute", "status", 50.0, 50.4, true, json!([])),
            call("shift-traffic", "start", 51.0, 52.0, true, dial),
            call("update-dns", "start", 52.0, 53.0, false, json!([])),
            call("update-dns", "status", 70.0, 71.0, true, json!([])),
            fence_call("promote-db", "old writer", fence_status, 72.0),
            fence_call("scale-compute", "primary Auto Scaling group", "fenced", 72.0),
            fence_call("shift-traffic", "primary traffic dial", "already_fenced", 72.0),
        ]
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
        let state = json!({"direction": "failover", "mode": "ungraceful", "dry_run": false,
            "trigger": {"source": "alarm", "alarms": ["web-5xx"], "state_change_time": "2026-11-29T10:00:00Z",
                        "reason": "5xx"}});
        build("exec-html", &state, &StepHistory::Read(history))
    }

    /// The chart's rows: (phase, start, end, y, branch).
    fn rows_of(html: &str) -> Vec<(String, f64, f64, f64, Option<String>)> {
        let attr = |tag: &str, name: &str| {
            let key = format!(" {name}=\"");
            tag.find(&key).map(|i| {
                let rest = &tag[i + key.len()..];
                rest[..rest.find('"').unwrap()].to_string()
            })
        };
        html.split("<g class=\"row\"")
            .skip(1)
            .map(|s| {
                let tag = &s[..s.find('>').unwrap()];
                let num = |n| attr(tag, n).unwrap().parse::<f64>().unwrap();
                (
                    attr(tag, "data-phase").unwrap(),
                    num("data-start"),
                    num("data-end"),
                    num("data-y"),
                    attr(tag, "data-branch"),
                )
            })
            .collect()
    }

    fn rto_marker_x(html: &str) -> Option<f64> {
        let i = html.find("id=\"rto-marker\"")?;
        let rest = &html[i..];
        let j = rest.find("data-x=\"")? + 8;
        rest[j..j + rest[j..].find('"')?].parse().ok()
    }

    #[test]
    fn the_page_has_every_section_and_every_phase_and_references_nothing() {
        let r = failover("fenced");
        let html = render(&r);
        assert!(
            html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
            "{html}"
        );
        assert!(html.trim_end().ends_with("</html>"));
        for id in [
            "objectives",
            "rto",
            "rpo",
            "timeline",
            "steps",
            "warnings",
            "changes",
            "fence",
            "overrides",
        ] {
            assert!(
                html.contains(&format!("id=\"{id}\"")),
                "section {id} missing"
            );
        }
        assert!(html.contains(
            "<title>pilotlight report: ungraceful failover succeeded: exec-html</title>"
        ));
        assert!(html.contains("<svg class=\"gantt\""));
        let phases: Vec<String> = rows_of(&html).into_iter().map(|r| r.0).collect();
        assert_eq!(
            phases,
            [
                "promote-db",
                "scale-compute",
                "shift-traffic",
                "update-dns",
                "promote-db-fence",
                "scale-compute-fence",
                "shift-traffic-fence"
            ]
        );
        for t in &r.timeline {
            assert!(
                html.contains(&format!("<tr data-phase=\"{}\">", t.step)),
                "{} not in the table",
                t.step
            );
        }
        // Every call is drawn: the polls show (2 + 4 + 1 + 2 + 3 calls).
        assert_eq!(html.matches("<rect class=\"call").count(), 13);
        assert_eq!(html.matches("<rect class=\"call done\"").count(), 7);
        assert!(
            html.contains("start, status \u{d7}3"),
            "scale-compute's calls by action"
        );
        // Axis in seconds from the trigger; the figures and their basis.
        assert!(html.contains(">seconds since the trigger</text>"));
        assert!(
            html.contains("<text class=\"tick\" x=\"290.0\" y=\"") && html.contains(">70</text>")
        );
        assert!(html.contains("<p class=\"figure\">52.0 s</p>"), "RTO");
        assert!(html.contains("<p class=\"figure\">4.0 s</p>"), "RPO");
        assert!(html.contains("rule: lag 4 s, 10 s old, within the plan&#39;s maximum of 60 s"));
        assert!(html.contains(
            "<td>eg-dr</td><td>TrafficDialPercentage</td><td>0</td><td>100</td><td>yes</td>"
        ));
        assert!(html.contains("<td class=\"ok\">fenced</td>") && html.contains("already fenced"));
        assert!(html.contains("<span class=\"badge ok\">SUCCEEDED</span>"));
        assert!(html.contains("<p class=\"none\">None.</p>"), "no warnings");
        assert!(html.contains("Overrides in effect: none"));
        // Self-contained: nothing loaded or linked from anywhere.
        let lower = html.to_lowercase();
        for external in [
            "<script", "<link", "<img", "<iframe", "<object", "src=", "href=", "url(", "@import",
            "http:", "https:", "//",
        ] {
            assert!(
                !lower.contains(external),
                "the page references something: {external}"
            );
        }
    }

    #[test]
    fn side_by_side_branches_are_separate_rows_overlapping_in_time() {
        let html = render(&failover("fenced"));
        let rows = rows_of(&html);
        let recover: Vec<_> = rows
            .iter()
            .filter(|r| r.4.as_deref() == Some("recover"))
            .collect();
        assert_eq!(recover.len(), 2, "{rows:?}");
        let (db, compute) = (recover[0], recover[1]);
        assert_eq!(
            (db.0.as_str(), compute.0.as_str()),
            ("promote-db", "scale-compute")
        );
        assert_ne!(db.3, compute.3, "one row each");
        assert!(
            db.1 < compute.2 && compute.1 < db.2,
            "they overlap in time: {db:?} {compute:?}"
        );
        assert_eq!((db.1, db.2, compute.2), (2.0, 40.5, 50.4));
        let shift = rows.iter().find(|r| r.0 == "shift-traffic").unwrap();
        assert!(
            shift.1 >= compute.2 && shift.4.is_none(),
            "the next phase starts after both branches"
        );
        let fence = rows
            .iter()
            .filter(|r| r.4.as_deref() == Some("fence"))
            .count();
        assert_eq!(fence, 3);
        assert_eq!(
            html.matches("<g class=\"branches\"").count(),
            2,
            "a band per side-by-side phase"
        );
        assert!(html.contains("data-group=\"recover\""));
        // A graceful failover runs promote-db alone: no band.
        let mut state = json!({"direction": "failover", "mode": "graceful"});
        state["steps"] =
            json!({"promote_db": call("promote-db", "start", 1.0, 2.0, true, json!([]))});
        let html = render(&build("exec-g", &state, &StepHistory::NotRead));
        assert_eq!(rows_of(&html)[0].4, None);
        assert!(!html.contains("<g class=\"branches\""));
    }

    #[test]
    fn the_rto_marker_sits_at_the_rto_on_the_axis() {
        let r = failover("fenced");
        assert_eq!(r.rto_seconds, Some(52.0));
        let html = render(&r);
        // The chart spans the trigger (0 s) to the last call's finish (73 s).
        let want = LABEL_W + 52.0 / 73.0 * PLOT_W;
        let x = rto_marker_x(&html).unwrap();
        assert!((x - want).abs() < 0.06, "{x} vs {want}");
        assert!(html.contains("data-seconds=\"52.000\"") && html.contains(">RTO 52.0 s</text>"));
        // Its x is where the shift's done call ends.
        let shift = rows_of(&html)
            .into_iter()
            .find(|r| r.0 == "shift-traffic")
            .unwrap();
        assert_eq!(shift.2, 52.0);
        // The trigger is the origin.
        assert!(html.contains(&format!(
            "<g class=\"marker trigger\"><line x1=\"{LABEL_W:.1}\""
        )));
    }

    #[test]
    fn unknown_rpo_and_dry_run_rto_are_words_and_flags_are_badged() {
        let r = failover("not_fenced");
        let html = render(&r);
        assert!(
            html.contains("<span class=\"badge warn\">DEGRADED</span>"),
            "not fenced is degraded"
        );
        assert!(html.contains("<span class=\"badge bad\">NOT FENCED</span>"));
        assert!(html.contains(
            "<li class=\"bad\">NOT FENCED: old writer old writer-1 (ap-northeast-2): not fenced"
        ));
        assert!(html.contains("<td class=\"bad\">not fenced</td>"));

        let mut shift = call(
            "shift-traffic",
            "start",
            5.0,
            6.0,
            true,
            json!([{"resource": "eg-dr", "field": "TrafficDialPercentage", "from": 0, "to": 100, "applied": false}]),
        );
        shift["dry_run"] = json!(true);
        let state = json!({"direction": "failover", "mode": "ungraceful", "dry_run": true,
                           "trigger": {"source": "manual", "state_change_time": "2026-11-29T10:00:00Z"},
                           "steps": {"shift_traffic": shift}});
        let r = build("exec-dry", &state, &StepHistory::NotRead);
        assert_eq!((r.rto_seconds, r.rpo_seconds), (None, None));
        let html = render(&r);
        assert!(html.contains("<span class=\"badge info\">DRY RUN</span>"));
        assert!(html.contains(
            "<div class=\"objective\" id=\"rto\"><h2>RTO</h2><p class=\"figure\">n/a</p>"
        ));
        assert!(html.contains(
            "<div class=\"objective\" id=\"rpo\"><h2>RPO</h2><p class=\"figure\">unknown</p>"
        ));
        assert!(html.contains("no replica lag was recorded before the promotion"));
        assert!(rto_marker_x(&html).is_none());
        assert!(
            html.contains("<text class=\"rto-none\"") && html.contains(">RTO n/a: dry run</text>")
        );
        assert!(html.contains("<td>no (dry run)</td>"));

        // Failed, rolled back; no timeline at all.
        let state = json!({"direction": "failover", "mode": "graceful",
            "error": {"Error": "pilotlight.PollLimitExceeded", "Cause": "catchup not done"},
            "rollback": {"outcome": "restored"}});
        let html = render(&build("exec-rb", &state, &StepHistory::NotRead));
        assert!(html.contains(
            "<span class=\"badge bad\">FAILED</span> <span class=\"badge warn\">ROLLED BACK</span>"
        ));
        assert!(html.contains(
            "<li class=\"bad\">error: pilotlight.PollLimitExceeded: catchup not done</li>"
        ));
        assert!(html.contains("No step reported anything: there is no timeline."));
        assert!(
            html.contains("<p class=\"figure\">unknown</p>"),
            "RTO of a failed run"
        );
    }

    #[test]
    fn everything_from_the_report_is_escaped() {
        let hostile = "<script>alert('x')</script>";
        let resource = "\"><img src=x onerror=alert(1)>";
        let mut promote = call(
            hostile,
            "start",
            1.0,
            2.0,
            true,
            json!([{"resource": resource, "field": "a&b", "from": "<b>", "to": null, "applied": true}]),
        );
        promote["message"] = json!("</td></tr></table><script>evil()</script>");
        promote["saw"] = json!({"note": "</pre></details><script>x()</script>"});
        let state = json!({"direction": "failover", "mode": "ungraceful",
            "trigger": {"source": "manual", "reason": "<iframe src=//evil>", "state_change_time": "2026-11-29T10:00:00Z"},
            "overrides": {"allow_stale_ami": true},
            "degraded": {"dns": {"phase": "update-dns", "error": {"Error": "E", "Cause": "<svg onload=x()>"}}},
            "steps": {"x": promote}});
        let r = build(
            "</title><script>exec()</script>",
            &state,
            &StepHistory::NotRead,
        );
        let html = render(&r);
        let lower = html.to_lowercase();
        for bad in ["<script", "<img", "<iframe", "<svg onload", "<b>"] {
            assert!(!lower.contains(bad), "unescaped {bad}");
        }
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
            "the phase name, escaped"
        );
        assert!(html.contains("data-phase=\"&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;\""));
        assert!(html.contains("<td>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</td><td>a&amp;b</td><td>&lt;b&gt;</td><td>none</td>"));
        assert!(
            html.contains(
                "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;script&gt;evil()&lt;/script&gt;"
            )
        );
        assert!(html.contains("&lt;/pre&gt;&lt;/details&gt;"));
        assert!(html.contains("reason: &lt;iframe src=//evil&gt;"));
        assert!(html.contains("E: &lt;svg onload=x()&gt;"));
        assert!(
            html.contains("<title>pilotlight report: ungraceful failover degraded: &lt;/title&gt;")
        );
        assert!(html.contains("<code>allow_stale_ami</code>"));
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}

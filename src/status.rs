//! `pilotlight status`: the topology as it stands, from live reads (`operator::status`).

use std::process::ExitCode;

use pilotlight::operator::status::{render, status};

use crate::connect::{AwsArgs, Session};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    aws: AwsArgs,
    /// The status as one JSON object (what could not be read is `{"unknown": "<why>"}`).
    #[arg(long)]
    json: bool,
}

pub async fn run(a: Args) -> Result<ExitCode, String> {
    let s = Session::open(&a.aws).await?;
    let st = status(&s.ctx).await.map_err(|e| e.to_string())?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&st).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", render(&st));
    }
    Ok(ExitCode::SUCCESS)
}

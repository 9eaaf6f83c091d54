//! `fabric-prices refresh [--file PATH]`: rebuilds the price table from the AWS Price List API
//! (run as `cargo xtask prices refresh`). Needs AWS credentials that may call `pricing:GetProducts`.

use std::process::ExitCode;

const TABLE: &str = "sdk/src/cost/prices.json";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let file = match args.as_slice() {
        [refresh] if refresh == "refresh" => TABLE.to_string(),
        [refresh, flag, path] if refresh == "refresh" && flag == "--file" => path.clone(),
        _ => {
            eprintln!("usage: cargo xtask prices refresh [--file {TABLE}]");
            return ExitCode::from(2);
        }
    };
    let mut table: serde_json::Value = match std::fs::read_to_string(&file).map(|t| serde_json::from_str(&t)) {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return fail(format!("{file} is not valid JSON: {e}")),
        Err(e) => return fail(format!("reading {file}: {e}")),
    };
    // The Price List API answers in us-east-1 (and a few other regions) for every region's prices.
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let client = aws_sdk_pricing::Client::new(&config);
    let today = humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10].to_string();
    match fabric_prices::refresh(&client, &mut table, &today).await {
        Ok(done) => {
            let text = serde_json::to_string_pretty(&table).expect("JSON") + "\n";
            if let Err(e) = std::fs::write(&file, text) {
                return fail(format!("writing {file}: {e}"));
            }
            eprintln!("{file}: {} prices asked, {} changed, dated {today}", done.asked, done.changed.len());
            done.changed.iter().for_each(|c| eprintln!("  changed: {c}"));
            done.missing.iter().for_each(|m| eprintln!("  warning: no on-demand price for {m}; its old price is kept"));
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!(
            "{e}\n    fix: give credentials that may call pricing:GetProducts (AWS_PROFILE, …); nothing was written"
        )),
    }
}

fn fail(message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(1)
}

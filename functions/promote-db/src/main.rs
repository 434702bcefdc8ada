//! promote-db: make the target region's database the writer (RDS read replica promotion or Aurora global switch).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pilotlight::runtime::serve(pilotlight::steps::promote_db::handle).await
}

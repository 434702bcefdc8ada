//! AWS Backup: the EC2 recovery points in a region's backup vault (the DR vault receives AMI recovery points from
//! the primary through Backup copy jobs).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::to_chrono;
use crate::error::{Error, ErrorKind, Result};
use crate::permissions::{Call, Permission, Resource};

/// An EC2 recovery point as ListRecoveryPointsByBackupVault shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryPoint {
    pub arn: String,
    pub status: String,
    pub created_at: Option<DateTime<Utc>>,
    /// The backed-up resource (the source instance's ARN; a copy keeps it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_arn: Option<String>,
}

/// IAM: what [`list_ec2_recovery_points`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const LIST_EC2_RECOVERY_POINTS: Call = Call {
    adapter: "backup::list_ec2_recovery_points",
    operations: &["list_recovery_points_by_backup_vault"],
    needs: &[Permission::new(
        "backup:ListRecoveryPointsByBackupVault",
        Resource::BackupVault,
    )],
};

/// Lists every EC2 recovery point in `vault` (all pages), only those of `resource_arn` when given
/// (`ByResourceArn`). A missing vault is NotFound with what to check.
pub async fn list_ec2_recovery_points(
    backup: &aws_sdk_backup::Client,
    vault: &str,
    region: &str,
    resource_arn: Option<&str>,
) -> Result<Vec<RecoveryPoint>> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let resp = backup
            .list_recovery_points_by_backup_vault()
            .backup_vault_name(vault)
            .by_resource_type("EC2")
            .set_by_resource_arn(resource_arn.map(str::to_string))
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| {
                let err = Error::aws("ListRecoveryPointsByBackupVault", &format!("backup vault {vault} ({region})"), e);
                if err.kind == ErrorKind::NotFound {
                    Error::not_found(format!("{err}: check the plan's backup vault name and that the vault exists in {region}"))
                } else {
                    err
                }
            })?;
        for rp in resp.recovery_points() {
            out.push(RecoveryPoint {
                arn: rp.recovery_point_arn().unwrap_or_default().to_string(),
                status: rp
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                created_at: to_chrono(rp.creation_date()),
                resource_arn: rp.resource_arn().map(str::to_string),
            });
        }
        match resp.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// Every call of this adapter that sends a request (`crate::permissions` checks the list is complete).
pub const CALLS: &[&Call] = &[&LIST_EC2_RECOVERY_POINTS];

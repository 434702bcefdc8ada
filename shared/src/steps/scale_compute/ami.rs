//! Which AMI scale-compute launches: the newest COMPLETED EC2 recovery point in the target region's backup vault,
//! within the plan's age limit (pure).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::aws::backup::RecoveryPoint;
use crate::error::{Error, Result};
use crate::plan::Side;

/// The recovery point chosen to launch, with its age when it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChosenAmi {
    pub image_id: String,
    pub recovery_point_arn: String,
    pub created_at: DateTime<Utc>,
    pub age_hours: f64,
    /// True when the AMI is older than the plan's limit and `allow_stale_ami` accepted it.
    pub too_old_but_forced: bool,
}

/// The AMI id of an EC2 recovery point: the last path segment of `arn:aws:ec2:<region>::image/ami-...`.
pub fn ami_id(recovery_point_arn: &str) -> Option<&str> {
    let (_, resource) = recovery_point_arn.rsplit_once(':')?;
    let id = resource.strip_prefix("image/")?;
    (id.starts_with("ami-") && id.len() > 4 && !id.contains('/')).then_some(id)
}

/// The recovery points of the plan's source resource (all of them when the plan names none). The listing already
/// asked for them (ByResourceArn); this keeps a server that ignores the filter from handing over another
/// instance's image. Pure.
pub fn of_source(points: Vec<RecoveryPoint>, source: Option<&str>) -> Vec<RecoveryPoint> {
    match source {
        None => points,
        Some(arn) => points
            .into_iter()
            .filter(|p| p.resource_arn.as_deref().is_none_or(|r| r == arn))
            .collect(),
    }
}

/// The newest COMPLETED recovery point that names an AMI. AWS documents no listing order, so order is not trusted.
pub fn newest_completed(points: &[RecoveryPoint]) -> Option<(&RecoveryPoint, &str, DateTime<Utc>)> {
    points
        .iter()
        .filter(|p| p.status == "COMPLETED")
        .filter_map(|p| Some((p, ami_id(&p.arn)?, p.created_at?)))
        .max_by_key(|(p, _, created)| (*created, p.arn.clone()))
}

/// Picks the AMI to launch, or says why there is none: nothing usable (NotFound) or older than the plan allows
/// (Refused, unless `allow_stale` — the override allow_stale_ami — accepts the risk: in a real disaster an old image may beat no image). `side` names the
/// vault's role in the messages ("the DR vault").
pub fn choose_ami(
    points: &[RecoveryPoint],
    side: Side,
    vault: &str,
    region: &str,
    now: DateTime<Utc>,
    max_age_hours: u64,
    force: bool,
) -> Result<ChosenAmi> {
    let (rp, image_id, created_at) = newest_completed(points).ok_or_else(|| {
        Error::not_found(format!(
            "no COMPLETED EC2 recovery point in vault {vault} (region {region}): check the AWS Backup copy job into \
             the {side} vault ({} EC2 recovery point(s) listed, none COMPLETED with an AMI); nothing was changed",
            points.len()
        ))
    })?;
    let age_hours = (now - created_at).num_seconds().max(0) as f64 / 3600.0;
    let too_old = age_hours > max_age_hours as f64;
    if too_old && !force {
        return Err(Error::refused(format!(
            "newest COMPLETED EC2 recovery point in vault {vault} (region {region}) is AMI {image_id}, created {} \
             ({age_hours:.1} h ago), older than the plan's limit of {max_age_hours} h (PILOTLIGHT_MAX_AMI_AGE_HOURS): \
             check the AWS Backup plan and the copy job into the {side} vault; to launch this AMI anyway, approve \
             the preflight finding with the override allow_stale_ami; nothing was changed",
            created_at.to_rfc3339()
        )));
    }
    Ok(ChosenAmi {
        image_id: image_id.to_string(),
        recovery_point_arn: rp.arn.clone(),
        created_at,
        age_hours: (age_hours * 10.0).round() / 10.0,
        too_old_but_forced: too_old,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use chrono::{Duration, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap()
    }

    fn rp(ami: &str, status: &str, hours_ago: i64) -> RecoveryPoint {
        RecoveryPoint {
            arn: format!("arn:aws:ec2:ap-northeast-1::image/{ami}"),
            status: status.into(),
            created_at: Some(now() - Duration::hours(hours_ago)),
            resource_arn: None,
        }
    }

    #[test]
    fn ami_id_is_the_last_path_segment_of_an_image_arn() {
        assert_eq!(
            ami_id("arn:aws:ec2:ap-northeast-1::image/ami-0123456789abcdef0"),
            Some("ami-0123456789abcdef0")
        );
        assert_eq!(
            ami_id("arn:aws:backup:ap-northeast-1:123456789012:recovery-point:ABC"),
            None
        );
        assert_eq!(ami_id("arn:aws:ec2:ap-northeast-1::snapshot/snap-1"), None);
        assert_eq!(ami_id("arn:aws:ec2:ap-northeast-1::image/ami-"), None);
        assert_eq!(ami_id(""), None);
    }

    #[test]
    fn newest_completed_ignores_order_status_and_non_amis() {
        let points = vec![
            rp("ami-0000000000000000a", "COMPLETED", 30),
            rp("ami-0000000000000000b", "COMPLETED", 2),
            rp("ami-0000000000000000c", "CREATING", 1),
            rp("ami-0000000000000000d", "PARTIAL", 0),
            RecoveryPoint {
                arn: "arn:aws:backup:ap-northeast-1:1:recovery-point:X".into(),
                status: "COMPLETED".into(),
                created_at: Some(now()),
                resource_arn: None,
            },
            rp("ami-0000000000000000e", "COMPLETED", 10),
        ];
        let (_, ami, _) = newest_completed(&points).unwrap();
        assert_eq!(ami, "ami-0000000000000000b");
        assert!(newest_completed(&points[2..4]).is_none());
    }

    #[test]
    fn choose_ami_errors_name_the_vault_and_what_to_check() {
        let e = choose_ami(
            &[],
            Side::Dr,
            "web-vault-dr",
            "ap-northeast-1",
            now(),
            72,
            false,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(
            e.message.contains(
                "no COMPLETED EC2 recovery point in vault web-vault-dr (region ap-northeast-1"
            ),
            "{e}"
        );
        assert!(e.message.contains("copy job into the DR vault"), "{e}");

        let old = [rp("ami-0000000000000000a", "COMPLETED", 100)];
        let e = choose_ami(
            &old,
            Side::Dr,
            "web-vault-dr",
            "ap-northeast-1",
            now(),
            72,
            false,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Refused);
        assert!(
            e.message.contains("web-vault-dr") && e.message.contains("ami-0000000000000000a"),
            "{e}"
        );
        assert!(
            e.message.contains("100.0 h ago") && e.message.contains("72 h"),
            "{e}"
        );

        let forced = choose_ami(
            &old,
            Side::Dr,
            "web-vault-dr",
            "ap-northeast-1",
            now(),
            72,
            true,
        )
        .unwrap();
        assert!(forced.too_old_but_forced);
        assert_eq!(forced.image_id, "ami-0000000000000000a");
    }

    #[test]
    fn choose_ami_accepts_a_fresh_image() {
        let points = [
            rp("ami-0000000000000000a", "COMPLETED", 71),
            rp("ami-0000000000000000b", "COMPLETED", 3),
        ];
        let c = choose_ami(&points, Side::Dr, "v", "r", now(), 72, false).unwrap();
        assert_eq!(
            (c.image_id.as_str(), c.age_hours, c.too_old_but_forced),
            ("ami-0000000000000000b", 3.0, false)
        );
        assert_eq!(
            c.recovery_point_arn,
            "arn:aws:ec2:ap-northeast-1::image/ami-0000000000000000b"
        );
    }
}

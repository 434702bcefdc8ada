//! Operators: the topic every notice goes to exists (`operators.topic`) and someone will read it: at least one
//! confirmed subscription (`operators.subscriptions`). ListSubscriptionsByTopic lists a subscription that is not
//! confirmed yet with the SubscriptionArn `PendingConfirmation`; such an endpoint receives nothing.

use crate::aws::clients::AwsClients;
use crate::aws::sns::{Subscription, TopicState, describe_topic, list_subscriptions};
use crate::plan::FailoverPlan;

use super::{Check, ReadinessTargets, bounded, dr_budget};

#[derive(Debug, Clone)]
pub struct OperatorsSeen {
    /// None: no topic configured.
    pub topic: Option<Result<TopicState, String>>,
    pub subscriptions: Option<Result<Vec<Subscription>, String>>,
}

pub async fn observe(
    aws: &AwsClients,
    plan: &FailoverPlan,
    targets: &ReadinessTargets,
) -> OperatorsSeen {
    let Some(arn) = targets.topic_arn.as_deref() else {
        return OperatorsSeen {
            topic: None,
            subscriptions: None,
        };
    };
    let t = dr_budget(plan);
    let (topic, subscriptions) = tokio::join!(
        bounded(t, describe_topic(aws.sns(), arn)),
        bounded(t, list_subscriptions(aws.sns(), arn)),
    );
    OperatorsSeen {
        topic: Some(topic),
        subscriptions: Some(subscriptions),
    }
}

const NOT_CONFIGURED: &str = "not configured: set PILOTLIGHT_SNS_TOPIC_ARN";

/// Pure.
pub fn checks(targets: &ReadinessTargets, seen: &OperatorsSeen) -> Vec<Check> {
    let arn = targets.topic_arn.as_deref().unwrap_or("-");
    let topic = match &seen.topic {
        None => Check::fail("operators.topic", "none", "exists", NOT_CONFIGURED),
        Some(Err(e)) => Check::unread("operators.topic", &format!("topic {arn}"), e, "exists"),
        Some(Ok(t)) => Check::pass(
            "operators.topic",
            t.topic_arn.clone(),
            "exists",
            format!("{} exists", t.topic_arn),
        ),
    };
    const LIMIT: &str = ">= 1 confirmed subscription";
    let subscriptions = match &seen.subscriptions {
        None => Check::fail("operators.subscriptions", "none", LIMIT, NOT_CONFIGURED),
        Some(Err(e)) => Check::unread(
            "operators.subscriptions",
            &format!("the subscriptions of {arn}"),
            e,
            LIMIT,
        ),
        Some(Ok(subs)) => subscribed(arn, subs),
    };
    vec![topic, subscriptions]
}

/// At least one confirmed subscription. Pure.
pub fn subscribed(arn: &str, subs: &[Subscription]) -> Check {
    const ID: &str = "operators.subscriptions";
    const LIMIT: &str = ">= 1 confirmed subscription";
    let confirmed: Vec<&Subscription> = subs.iter().filter(|s| s.confirmed()).collect();
    let pending = subs.len() - confirmed.len();
    let seen = format!("{} confirmed, {pending} pending", confirmed.len());
    if confirmed.is_empty() {
        let why = if subs.is_empty() {
            "the topic has no subscription".to_string()
        } else {
            format!("{pending} subscription(s) still PendingConfirmation")
        };
        return Check::fail(
            ID,
            seen,
            LIMIT,
            format!(
                "{why}: nobody receives pilotlight's notices (failover started, approval requests, the report); \
                 subscribe the on-call address to {arn} and confirm it"
            ),
        );
    }
    let names: Vec<String> = confirmed
        .iter()
        .map(|s| format!("{} {}", s.protocol, s.endpoint))
        .collect();
    Check::pass(
        ID,
        seen,
        LIMIT,
        format!("notices reach {}", names.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::sns::PENDING_CONFIRMATION;
    use crate::readiness::Verdict;

    fn sub(arn: &str) -> Subscription {
        Subscription {
            arn: arn.into(),
            protocol: "email".into(),
            endpoint: "oncall@example.com".into(),
        }
    }

    #[test]
    fn only_a_confirmed_subscription_counts() {
        let topic = "arn:aws:sns:ap-northeast-1:123456789012:ops";
        let c = subscribed(topic, &[]);
        assert!(
            c.verdict == Verdict::Fail && c.detail.contains("no subscription"),
            "{c:?}"
        );
        let c = subscribed(topic, &[sub(PENDING_CONFIRMATION)]);
        assert_eq!(
            (c.verdict, c.seen.as_str()),
            (Verdict::Fail, "0 confirmed, 1 pending")
        );
        let c = subscribed(
            topic,
            &[sub(PENDING_CONFIRMATION), sub(&format!("{topic}:1234"))],
        );
        assert_eq!(
            (c.verdict, c.seen.as_str()),
            (Verdict::Pass, "1 confirmed, 1 pending")
        );
        assert!(c.detail.contains("email oncall@example.com"));
    }

    #[test]
    fn an_unconfigured_or_unreadable_topic_fails() {
        let none = ReadinessTargets {
            state_machine_arn: None,
            topic_arn: None,
            lock_table: None,
            functions: Default::default(),
        };
        let c = checks(
            &none,
            &OperatorsSeen {
                topic: None,
                subscriptions: None,
            },
        );
        assert!(
            c.iter().all(
                |c| c.verdict == Verdict::Fail && c.detail.contains("PILOTLIGHT_SNS_TOPIC_ARN")
            )
        );
        let t = ReadinessTargets {
            topic_arn: Some("arn:t".into()),
            ..none
        };
        let c = checks(
            &t,
            &OperatorsSeen {
                topic: Some(Err("NotFound: Topic does not exist".into())),
                subscriptions: Some(Ok(vec![])),
            },
        );
        assert_eq!(c[0].verdict, Verdict::Fail);
        assert_eq!(c[0].seen, "error: NotFound: Topic does not exist");
    }
}

//! SNS: a topic's subscription counts (GetTopicAttributes), its subscriptions (ListSubscriptionsByTopic) and
//! Publish.

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::permissions::{Call, Permission, Resource};

/// The topic as GetTopicAttributes shows it: whether anyone will read the notice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicState {
    pub topic_arn: String,
    pub subscriptions_confirmed: Option<u64>,
    pub subscriptions_pending: Option<u64>,
}

/// IAM: what [`describe_topic`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const DESCRIBE_TOPIC: Call = Call {
    adapter: "sns::describe_topic",
    operations: &["get_topic_attributes"],
    needs: &[Permission::new("sns:GetTopicAttributes", Resource::Topic)],
};

pub async fn describe_topic(sns: &aws_sdk_sns::Client, topic_arn: &str) -> Result<TopicState> {
    let resp = sns
        .get_topic_attributes()
        .topic_arn(topic_arn)
        .send()
        .await
        .map_err(|e| Error::aws("GetTopicAttributes", topic_arn, e))?;
    let count = |k: &str| {
        resp.attributes()
            .and_then(|a| a.get(k))
            .and_then(|v| v.parse().ok())
    };
    Ok(TopicState {
        topic_arn: topic_arn.to_string(),
        subscriptions_confirmed: count("SubscriptionsConfirmed"),
        subscriptions_pending: count("SubscriptionsPending"),
    })
}

/// IAM: what [`publish`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const PUBLISH: Call = Call {
    adapter: "sns::publish",
    operations: &["publish"],
    needs: &[Permission::new("sns:Publish", Resource::Topic)],
};

/// Publishes one message; returns its MessageId.
pub async fn publish(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    subject: &str,
    message: String,
) -> Result<String> {
    let resp = sns
        .publish()
        .topic_arn(topic_arn)
        .subject(subject)
        .message(message)
        .send()
        .await
        .map_err(|e| Error::aws("Publish", topic_arn, e))?;
    resp.message_id().map(str::to_string).ok_or_else(|| {
        Error::new(
            ErrorKind::Transient,
            format!("Publish on {topic_arn} returned no MessageId"),
        )
    })
}

/// One subscription of a topic. `arn` is the literal `PendingConfirmation` until the endpoint confirms it (SNS API
/// reference, ListSubscriptionsByTopic): such a subscription receives nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscription {
    pub arn: String,
    pub protocol: String,
    pub endpoint: String,
}

/// The SubscriptionArn SNS lists for a subscription that is not confirmed yet.
pub const PENDING_CONFIRMATION: &str = "PendingConfirmation";

impl Subscription {
    pub fn confirmed(&self) -> bool {
        self.arn.starts_with("arn:")
    }
}

/// IAM: what [`list_subscriptions`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const LIST_SUBSCRIPTIONS: Call = Call {
    adapter: "sns::list_subscriptions",
    operations: &["list_subscriptions_by_topic"],
    needs: &[Permission::new(
        "sns:ListSubscriptionsByTopic",
        Resource::Topic,
    )],
};

/// Pages ListSubscriptionsByTopic stops after (100 subscriptions a page): an operators' topic has a few.
pub const SUBSCRIPTION_PAGES: usize = 10;

/// Every subscription of the topic (at most [`SUBSCRIPTION_PAGES`] pages).
pub async fn list_subscriptions(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
) -> Result<Vec<Subscription>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..SUBSCRIPTION_PAGES {
        let resp = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| Error::aws("ListSubscriptionsByTopic", topic_arn, e))?;
        out.extend(resp.subscriptions().iter().map(|s| Subscription {
            arn: s.subscription_arn().unwrap_or_default().to_string(),
            protocol: s.protocol().unwrap_or_default().to_string(),
            endpoint: s.endpoint().unwrap_or_default().to_string(),
        }));
        token = resp.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Every call of this adapter that sends a request (`crate::permissions` checks the list is complete).
pub const CALLS: &[&Call] = &[&DESCRIBE_TOPIC, &LIST_SUBSCRIPTIONS, &PUBLISH];

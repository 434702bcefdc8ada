//! SNS: a topic's subscription counts (GetTopicAttributes) and Publish.

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

/// Every call of this adapter that sends a request (`crate::permissions` checks the list is complete).
pub const CALLS: &[&Call] = &[&DESCRIBE_TOPIC, &PUBLISH];

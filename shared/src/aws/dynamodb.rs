//! DynamoDB: conditional writes on items of string attributes (detect's flow lock, `steps::detect::lock`). Plain
//! views only: the conditions are the caller's.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::error::{Error, Result};
use crate::permissions::{Call, Permission, Resource};

/// An item whose attributes are all strings (`S`); other attribute types are left out when read.
pub type Item = BTreeMap<String, String>;

/// A condition expression with its `#name` and `:value` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub expression: String,
    pub names: Vec<(String, String)>,
    pub values: Vec<(String, String)>,
}

/// What a conditional write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The condition held; `old` is the item the write replaced (None when there was none).
    Yes { old: Option<Item> },
    /// `ConditionalCheckFailedException`: nothing was written.
    ConditionFailed,
}

fn attributes(item: &Item) -> HashMap<String, AttributeValue> {
    item.iter()
        .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
        .collect()
}

fn plain(attrs: &HashMap<String, AttributeValue>) -> Item {
    attrs
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), s.clone())))
        .collect()
}

fn names(c: &Condition) -> Option<HashMap<String, String>> {
    (!c.names.is_empty()).then(|| c.names.iter().cloned().collect())
}

fn values(c: &Condition) -> Option<HashMap<String, AttributeValue>> {
    (!c.values.is_empty()).then(|| {
        c.values
            .iter()
            .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
            .collect()
    })
}

/// IAM: what [`put_item_if`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const PUT_ITEM_IF: Call = Call {
    adapter: "dynamodb::put_item_if",
    operations: &["put_item"],
    needs: &[Permission::new("dynamodb:PutItem", Resource::LockTable)],
};

/// PutItem with a condition; the replaced item comes back (`ReturnValues ALL_OLD`).
pub async fn put_item_if(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    item: &Item,
    condition: &Condition,
) -> Result<Written> {
    let sent = ddb
        .put_item()
        .table_name(table)
        .set_item(Some(attributes(item)))
        .condition_expression(&condition.expression)
        .set_expression_attribute_names(names(condition))
        .set_expression_attribute_values(values(condition))
        .return_values(ReturnValue::AllOld)
        .send()
        .await;
    match sent {
        Ok(out) => Ok(Written::Yes {
            old: out.attributes().filter(|a| !a.is_empty()).map(plain),
        }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(Written::ConditionFailed)
        }
        Err(e) => Err(Error::aws("PutItem", table, e)),
    }
}

/// IAM: what [`get_item`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const GET_ITEM: Call = Call {
    adapter: "dynamodb::get_item",
    operations: &["get_item"],
    needs: &[Permission::new("dynamodb:GetItem", Resource::LockTable)],
};

/// GetItem with a strongly consistent read: the item as the last successful write left it.
pub async fn get_item(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    key: (&str, &str),
) -> Result<Option<Item>> {
    let out = ddb
        .get_item()
        .table_name(table)
        .key(key.0, AttributeValue::S(key.1.to_string()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| Error::aws("GetItem", table, e))?;
    Ok(out.item().map(plain))
}

/// IAM: what [`delete_item_if`] sends and needs (checked against the code below by `crate::permissions`' tests).
pub const DELETE_ITEM_IF: Call = Call {
    adapter: "dynamodb::delete_item_if",
    operations: &["delete_item"],
    needs: &[Permission::new("dynamodb:DeleteItem", Resource::LockTable)],
};

/// DeleteItem with a condition; false when the condition did not hold (nothing deleted).
pub async fn delete_item_if(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    key: (&str, &str),
    condition: &Condition,
) -> Result<bool> {
    let sent = ddb
        .delete_item()
        .table_name(table)
        .key(key.0, AttributeValue::S(key.1.to_string()))
        .condition_expression(&condition.expression)
        .set_expression_attribute_names(names(condition))
        .set_expression_attribute_values(values(condition))
        .send()
        .await;
    match sent {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(Error::aws("DeleteItem", table, e)),
    }
}

/// Every call of this adapter that sends a request (`crate::permissions` checks the list is complete).
pub const CALLS: &[&Call] = &[&PUT_ITEM_IF, &GET_ITEM, &DELETE_ITEM_IF];

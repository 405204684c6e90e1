//! One reconcile of one `KafkaMirror`, as a pipeline of steps, each its own module with its own error:
//! [`validate`] (pure: the mirror's identity, the spec check) → [`observe`] (the Secrets it names, its
//! migration record, both Kafka clusters) → `decide` (pure: workers, migration, lag) → [`desired`] (pure:
//! every object) → `apply` (server-side apply, orphans deleted) → [`publish`] (status and Events). A spec that
//! cannot work stops before anything is applied and says why in the status and an Event; only what a retry can
//! fix is an error.
//!
//! [`validate`]: crate::validate
//! [`observe`]: crate::observe
//! [`desired`]: crate::desired
//! [`publish`]: crate::publish

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kafka_mirror_crds::KafkaMirror;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::{Client, ResourceExt};

use crate::apply::apply;
use crate::decide::decide;
use crate::desired::{BuildSettings, desired_objects};
use crate::error::Chain;
use crate::metrics::Metrics;
use crate::observe::observe;
use crate::reason::Reason;
use crate::validate::{Refusal, validate};
use crate::{Error, Result, publish};

/// How often what cannot be seen through watches is looked at again.
#[derive(Debug, Clone)]
pub struct Intervals {
    /// Lag measurement of a working mirror.
    pub lag: Duration,
    /// A spec that cannot work: nothing changes until the user edits it, and an edit triggers a reconcile at
    /// once.
    pub invalid: Duration,
    /// A Secret or key the spec names is missing: the user creates it without editing the mirror, and the
    /// operator does not watch Secrets (it may only get the ones a mirror names), so it looks again soon.
    pub missing_secret: Duration,
    /// After a failed reconcile (API server errors).
    pub error: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            lag: Duration::from_secs(30),
            invalid: Duration::from_secs(300),
            missing_secret: Duration::from_secs(10),
            error: Duration::from_secs(15),
        }
    }
}

impl Intervals {
    /// When a working mirror is measured again: the lag interval, or `spec.consumerGroups.intervalSeconds`
    /// when that is shorter (the groups are synced on each measurement).
    pub fn measure(&self, spec: &kafka_mirror_crds::KafkaMirrorSpec) -> Duration {
        spec.consumer_groups
            .as_ref()
            .map(|groups| Duration::from_secs(groups.interval_seconds.max(1) as u64))
            .map_or(self.lag, |groups| groups.min(self.lag))
    }

    /// When a mirror refused for `reason` is looked at again.
    pub fn after_refusal(&self, reason: Reason) -> Duration {
        match reason {
            Reason::SecretMissing => self.missing_secret,
            _ => self.invalid,
        }
    }
}

/// What every reconcile shares.
pub(crate) struct Context {
    pub client: Client,
    pub settings: BuildSettings,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub intervals: Intervals,
}

pub(crate) async fn reconcile(resource: Arc<KafkaMirror>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started();
    let mirror = match validate(resource)? {
        Ok(mirror) => mirror,
        Err(refusal) => return refuse(&refusal, &ctx).await,
    };
    // Taken before Kafka is asked: `status.lag.measuredAt` must not be later than the offsets it dates, or a
    // reader waiting for "lag 0 measured after my last record" could be answered by offsets read before it.
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let observation = match observe(&ctx.client, &mirror).await? {
        Ok(observation) => observation,
        Err(refusal) => return refuse(&refusal, &ctx).await,
    };
    let decision = decide(&mirror, observation, &now);
    let objects = desired_objects(
        &mirror.identity,
        mirror.spec(),
        &ctx.settings,
        &decision.workers,
    )?;
    let deployment = apply(&ctx.client, &mirror.identity, &objects).await?;
    publish::applied(&ctx, &mirror, &decision, &deployment, &now).await?;
    Ok(Action::requeue(ctx.intervals.measure(mirror.spec())))
}

/// A spec that cannot work is looked at again slowly (an edit triggers a reconcile at once anyway); a missing
/// Secret soon, since creating it is no edit of the mirror.
async fn refuse(refusal: &Refusal, ctx: &Context) -> Result<Action> {
    publish::refused(ctx, refusal).await?;
    Ok(Action::requeue(
        ctx.intervals.after_refusal(refusal.problem.reason),
    ))
}

/// Retry failed reconciles at a steady pace; count them by reason.
pub(crate) fn error_policy(mirror: Arc<KafkaMirror>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(error);
    tracing::warn!(mirror = %mirror.name_any(), namespace = ?mirror.namespace(), error = %Chain(error), "reconcile failed, retrying");
    Action::requeue(ctx.intervals.error)
}

#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod secrets_never_leak;

//! Leader election on a `coordination.k8s.io/v1` Lease, so two operator replicas never both write. The same
//! protocol as client-go's: the holder renews the Lease every third of its duration; another replica takes it
//! over only after it saw the Lease unchanged for a whole duration, judged on its own clock (clocks of two
//! nodes are never compared). Every write is a replace guarded by the `resourceVersion` that was read, so two
//! candidates cannot both win.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;

use crate::Chain;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading Lease {lease}")]
    Read { lease: String, source: kube::Error },

    #[error("writing Lease {lease}")]
    Write { lease: String, source: kube::Error },

    #[error("releasing Lease {lease}")]
    Release { lease: String, source: kube::Error },

    /// The Lease holding the leadership was lost or could not be renewed in time.
    #[error("lost the leader Lease {lease}: another operator replica may be reconciling now")]
    Lost { lease: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub struct LeaderLease {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    /// Someone else's Lease as last read and when it was first read like that.
    observed: Mutex<Option<(LeaseRecord, Instant)>>,
}

/// What tells one renewal of a Lease from the next: any change means its holder is alive.
#[derive(Debug, Clone, PartialEq)]
struct LeaseRecord {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    resource_version: Option<String>,
}

impl LeaderLease {
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Self {
        Self {
            api,
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
            observed: Mutex::new(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One round: creates the Lease, renews it if it is ours, or takes it over if its holder stopped
    /// renewing. `true` when this replica holds the Lease afterwards. `now` is this process's clock.
    pub async fn try_acquire_or_renew(&self, now: Instant) -> Result<bool> {
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|source| Error::Read {
                lease: self.name.clone(),
                source,
            })?;
        let Some(current) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(None)),
            };
            return self.written(self.api.create(&PostParams::default(), &lease).await);
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if holder != self.identity && !holder.is_empty() && !self.expired(&current, &spec, now) {
            return Ok(false);
        }
        let lease = Lease {
            metadata: current.metadata.clone(),
            spec: Some(self.spec(Some(&spec))),
        };
        self.written(
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await,
        )
    }

    /// Gives the Lease up on a graceful shutdown, so a standby takes over at once instead of after a whole
    /// lease duration.
    pub async fn release(&self) -> Result<()> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|source| Error::Read {
                lease: self.name.clone(),
                source,
            })?
        else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map_err(|source| Error::Release {
                lease: self.name.clone(),
                source,
            })?;
        Ok(())
    }

    /// Our spec: renewed now, acquired now unless we held it already.
    fn spec(&self, previous: Option<&LeaseSpec>) -> LeaseSpec {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let held = previous.is_some_and(|p| p.holder_identity.as_deref() == Some(&self.identity));
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs().max(1) as i32),
            acquire_time: if held {
                previous.and_then(|p| p.acquire_time.clone())
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if held || previous.is_none() {
                transitions
            } else {
                transitions + 1
            }),
            ..LeaseSpec::default()
        }
    }

    /// True when someone else's Lease has looked the same to us for longer than its duration.
    fn expired(&self, lease: &Lease, spec: &LeaseSpec, now: Instant) -> bool {
        let record = LeaseRecord {
            holder: spec.holder_identity.clone(),
            renew_time: spec.renew_time.clone(),
            resource_version: lease.metadata.resource_version.clone(),
        };
        let duration = spec
            .lease_duration_seconds
            .map_or(self.duration, |s| Duration::from_secs(s.max(1) as u64));
        let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        match &*observed {
            Some((seen, since)) if *seen == record => now.duration_since(*since) > duration,
            _ => {
                *observed = Some((record, now));
                false
            }
        }
    }

    /// A write's outcome: ours, or lost to a concurrent writer (409: someone else wrote first).
    fn written(&self, result: std::result::Result<Lease, kube::Error>) -> Result<bool> {
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(source) => Err(Error::Write {
                lease: self.name.clone(),
                source,
            }),
        }
    }
}

/// Waits until this replica holds the Lease. Retries API errors: the API server may be restarting.
pub async fn acquire(lease: &LeaderLease) {
    let retry = lease.duration / 3;
    loop {
        match lease.try_acquire_or_renew(Instant::now()).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "leader election: cannot reach the Lease, retrying")
            }
        }
        tokio::time::sleep(retry).await;
    }
}

/// Renews the Lease every third of its duration; returns when it was lost or could not be renewed for two
/// thirds of its duration (before anyone else may take it over), so the caller stops writing in time.
pub async fn keep(lease: &LeaderLease) -> Error {
    let period = lease.duration / 3;
    let deadline = lease.duration * 2 / 3;
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(period).await;
        match lease.try_acquire_or_renew(Instant::now()).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                return Error::Lost {
                    lease: lease.name.clone(),
                };
            }
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "leader election: renewing the Lease failed");
                if renewed.elapsed() >= deadline {
                    return Error::Lost {
                        lease: lease.name.clone(),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod scenarios;

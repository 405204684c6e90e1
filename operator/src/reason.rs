//! Every reason the operator writes to the API, in one place: the CamelCase `reason` of the status conditions
//! and of the Events. Their strings are part of the API (users and alerts match on them): never change one.

use std::fmt;

/// A condition's or an Event's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    // A spec that cannot work (Ready, Degraded, and a Warning Event).
    InvalidSpec,
    SecretMissing,
    // Ready.
    Paused,
    Completed,
    NoReplicas,
    WorkersNotReady,
    LagUnknown,
    Mirroring,
    // Progressing.
    NotRunning,
    Scaling,
    Migrating,
    CatchingUp,
    Steady,
    // Degraded, and Warning Events.
    SourceUnreachable,
    TargetUnreachable,
    SourceTruncated,
    NoWorkerReady,
    AsExpected,
    // FailoverReady.
    GroupsSynced,
    NoGroupToFollow,
    RecordsNotOnTarget,
    GroupsNotTranslated,
    GroupSyncFailed,
    // Normal Events.
    Applied,
    MigrationCompleted,
}

impl Reason {
    /// The string written to the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidSpec => "InvalidSpec",
            Reason::SecretMissing => "SecretMissing",
            Reason::Paused => "Paused",
            Reason::Completed => "Completed",
            Reason::NoReplicas => "NoReplicas",
            Reason::WorkersNotReady => "WorkersNotReady",
            Reason::LagUnknown => "LagUnknown",
            Reason::Mirroring => "Mirroring",
            Reason::NotRunning => "NotRunning",
            Reason::Scaling => "Scaling",
            Reason::Migrating => "Migrating",
            Reason::CatchingUp => "CatchingUp",
            Reason::Steady => "Steady",
            Reason::SourceUnreachable => "SourceUnreachable",
            Reason::TargetUnreachable => "TargetUnreachable",
            Reason::SourceTruncated => "SourceTruncated",
            Reason::NoWorkerReady => "NoWorkerReady",
            Reason::AsExpected => "AsExpected",
            Reason::GroupsSynced => "GroupsSynced",
            Reason::NoGroupToFollow => "NoGroupToFollow",
            Reason::RecordsNotOnTarget => "RecordsNotOnTarget",
            Reason::GroupsNotTranslated => "GroupsNotTranslated",
            Reason::GroupSyncFailed => "GroupSyncFailed",
            Reason::Applied => "Applied",
            Reason::MigrationCompleted => "MigrationCompleted",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

-- Argo CD health check for KafkaMirror (kafkamirror.io/v1alpha1).
--
-- Install: the key resource.customizations.health.kafkamirror.io_KafkaMirror of the argocd-cm ConfigMap
-- (deploy/argocd/argocd-cm-patch.yaml holds this exact text; tests/argocd/run.sh checks they are identical).
--
-- Reads what the operator writes: metadata.generation, spec.paused, spec.mode, status.observedGeneration
-- and the conditions Ready, Progressing and Degraded. The first rule that matches decides:
--
--   what the object says                                   health       message
--   1. no status, or no conditions yet                     Progressing  Waiting for the operator to report status
--   2. status.observedGeneration < metadata.generation     Progressing  Waiting for the operator to observe generation N
--   3. spec.paused true and Ready reason Paused            Suspended    the Ready message
--   4. Degraded True (InvalidSpec, SecretMissing,          Degraded     <reason>: <message> of Degraded
--      SourceUnreachable, TargetUnreachable, NoWorkerReady)
--   5. mode migrate (or Progressing reason Migrating),     Progressing  <reason>: <message> of Progressing
--      Ready True but not reason Completed: the copy runs               (Migrating: N records left to copy ...)
--   6. Ready True (Mirroring, even while catching up with  Healthy      the Ready message
--      lag; Completed migrations)
--   7. Ready False or Unknown (WorkersNotReady,            Progressing  <reason>: <message> of Ready
--      NoReplicas, LagUnknown, ...)
--   8. no Ready condition                                  Progressing  Waiting for the operator to report the Ready condition
--
-- Rule 3 comes before rule 4 on purpose: a mirror paused while its source is down (maintenance) is
-- Suspended, not Degraded. A paused mirror with an invalid spec or a missing Secret is Degraded: the
-- operator then reports that problem as the Ready reason instead of Paused.
-- Rule 5: a migration is a one-time job, Healthy only once it completed, so a sync wave after it waits.
--
-- Argo CD runs this in gopher-lua (Lua 5.1) with only the base and table libraries for argocd-cm checks:
-- no string.* or math.* functions and no ("..."):method() calls here. Every field may be absent.

local hs = {}

-- t[key] when t is a table, else nil.
local function field(t, key)
  if type(t) == "table" then
    return t[key]
  end
  return nil
end

-- A field as a string, "" when absent.
local function text(value)
  if value == nil then
    return ""
  end
  return tostring(value)
end

-- The first condition of the given type, or nil.
local function condition(conditions, kind)
  if type(conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(conditions) do
    if type(c) == "table" and c.type == kind then
      return c
    end
  end
  return nil
end

-- "<reason>: <message>", or the part of it that exists, or the fallback.
local function describe(c, fallback)
  local reason = text(field(c, "reason"))
  local message = text(field(c, "message"))
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if reason ~= "" then
    return reason
  end
  if message ~= "" then
    return message
  end
  return fallback
end

-- The message of a condition, or its reason, or the fallback.
local function message_of(c, fallback)
  local message = text(field(c, "message"))
  if message ~= "" then
    return message
  end
  local reason = text(field(c, "reason"))
  if reason ~= "" then
    return reason
  end
  return fallback
end

local metadata = field(obj, "metadata")
local spec = field(obj, "spec")
local status = field(obj, "status")
local conditions = field(status, "conditions")

-- 1. Nothing reported yet.
if type(conditions) ~= "table" or next(conditions) == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local ready = condition(conditions, "Ready")
local progressing = condition(conditions, "Progressing")
local degraded = condition(conditions, "Degraded")

-- 2. A status about an older spec says nothing about this one. Without status.observedGeneration (a status
-- not written by this operator), the Ready condition's observedGeneration is used, and without both the
-- generation is not judged.
local generation = tonumber(field(metadata, "generation"))
local observed = tonumber(field(status, "observedGeneration"))
if observed == nil then
  observed = tonumber(field(ready, "observedGeneration"))
end
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

-- 3. Paused on purpose: the workers are scaled to zero.
if field(spec, "paused") == true and field(ready, "reason") == "Paused" then
  hs.status = "Suspended"
  hs.message = message_of(ready, "Paused")
  return hs
end

-- 4. Something the user or the clusters must fix.
if field(degraded, "status") == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded, "Degraded")
  return hs
end

local ready_true = field(ready, "status") == "True"

-- 5. A migration is done only when it completed, even while every worker is ready.
local migrating = field(spec, "mode") == "migrate" or field(progressing, "reason") == "Migrating"
if ready_true and migrating and field(ready, "reason") ~= "Completed" then
  hs.status = "Progressing"
  if field(progressing, "status") == "True" then
    hs.message = describe(progressing, "Migrating")
  else
    local remaining = tonumber(field(field(status, "migration"), "remaining"))
    if remaining ~= nil then
      hs.message = "Migrating: " .. tostring(remaining) .. " records left to copy"
    else
      hs.message = "Migrating: waiting for the copy to complete"
    end
  end
  return hs
end

-- 6. The workers run (lag, if any, is being caught up), or the migration completed.
if ready_true then
  hs.status = "Healthy"
  hs.message = message_of(ready, "Ready")
  return hs
end

-- 7. Not ready yet, and nothing is failing.
if ready ~= nil then
  hs.status = "Progressing"
  hs.message = describe(ready, "Waiting for the Ready condition to become True")
  return hs
end

-- 8. Conditions without Ready.
hs.status = "Progressing"
hs.message = "Waiting for the operator to report the Ready condition"
return hs

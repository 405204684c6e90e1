#!/usr/bin/env bash
# Tests the Argo CD health check of KafkaMirror (deploy/argocd/) the way Argo CD tests its own
# resource_customizations: every case of deploy/argocd/health_test.yaml runs health.lua under Lua 5.1 (Debian's
# lua5.1, the language of gopher-lua) against its testdata object, and the status and message must equal the
# expected ones exactly. Also checks that the argocd-cm patch carries the same Lua text, that every testdata
# object fits the KafkaMirror schema of crds/kafkamirror.yaml, that the example Application says what it
# should, that no object with a field missing makes the script fail, and that this harness can fail at all.
# Prints one line per check and `N passed, N failed`; exits 1 if anything failed.
# Usage: bash tests/argocd/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=tests/tools.sh disable=SC1091 # followed with shellcheck -x, from the repository root
source tests/tools.sh

dir=deploy/argocd
harness=tests/argocd/run_cases.lua
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
results="$work/results"
: >"$results"

section() { printf '\n== %s\n' "$*"; }

# Runs a command whose output lines starting with "ok " or "FAILED " are check results; a command that fails
# without saying what failed counts as one failure.
check() {
  local out rc=0
  out="$("$@" 2>&1)" || rc=$?
  if [ -n "$out" ]; then
    printf '%s\n' "$out" | tee -a "$results"
  fi
  if [ "$rc" -ne 0 ] && ! grep -q '^FAILED ' <<<"$out"; then
    printf 'FAILED  %s exited with %s\n' "$*" "$rc" | tee -a "$results"
  fi
}

# Runs a command that must fail with exactly one FAILED line; reports that as one passing check.
must_fail() {
  local what="$1" out rc=0
  shift
  out="$("$@" 2>&1)" || rc=$?
  if [ "$rc" -eq 1 ] && [ "$(grep -c '^FAILED ' <<<"$out")" -eq 1 ]; then
    printf 'ok      self-check: %s is reported as a failure\n' "$what" | tee -a "$results"
  else
    printf 'FAILED  self-check: %s was not reported as exactly one failure (exit %s):\n%s\n' \
      "$what" "$rc" "$out" | tee -a "$results"
  fi
}

section "files: argocd-cm patch, testdata against the CRD schema, example Application"
# Also writes the cases as Lua tables ($work/cases.lua) and the self-check inputs.
check python3 - "$dir" "$work" <<'PY'
import copy, difflib, os, sys
import jsonschema, yaml

directory, work = sys.argv[1], sys.argv[2]
CM_KEY = "resource.customizations.health.kafkamirror.io_KafkaMirror"


class Loader(yaml.SafeLoader):
    """YAML as Kubernetes reads it: timestamps stay strings."""


Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader)


def lua_string(s):
    out = []
    for b in s.encode("utf-8"):
        out.append(chr(b) if 32 <= b < 127 and b not in (34, 92) else "\\%03d" % b)
    return '"' + "".join(out) + '"'


def lua(v):
    """A Lua 5.1 literal of a YAML value, as Argo CD hands objects to Lua (null: absent)."""
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:
            return "(0/0)"
        if v in (float("inf"), float("-inf")):
            return "(1/0)" if v > 0 else "(-1/0)"
        return repr(v)
    if isinstance(v, str):
        return lua_string(v)
    if isinstance(v, list):
        return "{" + ", ".join(lua(x) for x in v) + "}"
    if isinstance(v, dict):
        key = lambda k: ("true" if k else "false") if isinstance(k, bool) else str(k)
        return "{" + ", ".join(
            "[%s] = %s" % (lua_string(key(k)), lua(x)) for k, x in v.items() if x is not None) + "}"
    raise TypeError("no Lua literal for %r" % (v,))


def write_cases(path, cases):
    with open(path, "w", encoding="utf-8") as f:
        f.write("return {\n")
        for c in cases:
            f.write("  {name = %s, status = %s, message = %s, obj = %s},\n" % (
                lua_string(c["name"]), lua_string(c["status"]), lua_string(c["message"]), lua(c["obj"])))
        f.write("}\n")


def report(ok, what, detail=""):
    print(("ok      " if ok else "FAILED  ") + what + (("\n" + detail) if detail and not ok else ""))


def differences(a, b, a_name, b_name):
    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), a_name, b_name))


# The argocd-cm patch carries health.lua exactly.
health_path = os.path.join(directory, "health.lua")
cm_path = os.path.join(directory, "argocd-cm-patch.yaml")
with open(health_path, encoding="utf-8") as f:
    health = f.read()
cm = load(cm_path)
problems = []
if cm.get("apiVersion") != "v1" or cm.get("kind") != "ConfigMap":
    problems.append("not a v1 ConfigMap")
if (cm.get("metadata") or {}).get("name") != "argocd-cm":
    problems.append("metadata.name is not argocd-cm")
in_cm = (cm.get("data") or {}).get(CM_KEY)
if in_cm is None:
    problems.append("no data key " + CM_KEY)
elif in_cm != health:
    problems.append("data[%s] differs from %s:\n%s" % (CM_KEY, health_path,
                    differences(health, in_cm, health_path, cm_path + " " + CM_KEY)))
report(not problems, "%s: data[%s] is %s, byte for byte" % (cm_path, CM_KEY, health_path), "\n".join(problems))
altered = in_cm[:-2] + in_cm[-1] if in_cm else ""
report(bool(in_cm) and altered != health and differences(health, altered, "a", "b") != "",
       "self-check: a one-character difference between health.lua and the patch is detected")

# The cases, in the format of Argo CD's health_test.yaml.
tests = load(os.path.join(directory, "health_test.yaml"))["tests"]
schema_doc = load("crds/kafkamirror.yaml")
version = next(v for v in schema_doc["spec"]["versions"] if v["name"] == "v1alpha1")
root = version["schema"]["openAPIV3Schema"]


def json_schema(s):
    """OpenAPI v3 (structural) to JSON Schema: nullable becomes a null type, int-or-string loses its type."""
    s = copy.deepcopy(s)
    def fix(n):
        if isinstance(n, dict):
            if n.get("x-kubernetes-int-or-string"):
                n.pop("type", None)
            elif n.get("nullable") and "type" in n:
                n["type"] = [n["type"], "null"]
            for v in n.values():
                fix(v)
        elif isinstance(n, list):
            for v in n:
                fix(v)
    fix(s)
    return s


def unknown_fields(value, s, path):
    """Fields the API server would prune: the schema does not name them."""
    found = []
    if isinstance(value, dict) and isinstance(s, dict) and not s.get("x-kubernetes-preserve-unknown-fields"):
        props = s.get("properties")
        extra = s.get("additionalProperties")
        for k, v in value.items():
            if props is not None and k in props:
                found += unknown_fields(v, props[k], path + "." + k)
            elif isinstance(extra, dict):
                found += unknown_fields(v, extra, path + "." + k)
            elif props is not None:
                found.append(path + "." + k)
    elif isinstance(value, list) and isinstance(s, dict):
        for i, v in enumerate(value):
            found += unknown_fields(v, s.get("items"), "%s[%d]" % (path, i))
    return found


validator = jsonschema.Draft7Validator(json_schema(root))
cases, schema_problems = [], []
for t in tests:
    name = t["inputPath"]
    obj = load(os.path.join(directory, name))
    expected = t.get("healthStatus") or {}
    cases.append({"name": name, "status": expected.get("status", ""), "message": expected.get("message", ""),
                  "obj": obj})
    if obj.get("apiVersion") != "kafkamirror.io/v1alpha1" or obj.get("kind") != "KafkaMirror":
        schema_problems.append("%s: not a kafkamirror.io/v1alpha1 KafkaMirror" % name)
    meta = obj.get("metadata") or {}
    if not meta.get("name") or not isinstance(meta.get("generation"), int):
        schema_problems.append("%s: metadata needs a name and an integer generation" % name)
    body = {k: v for k, v in obj.items() if k in ("spec", "status")}
    for e in validator.iter_errors(body):
        schema_problems.append("%s: %s: %s" % (name, "/".join(str(p) for p in e.absolute_path), e.message))
    for field in unknown_fields(body, root, ""):
        schema_problems.append("%s: %s is not in the schema" % (name, field.lstrip(".")))
listed = {t["inputPath"] for t in tests}
for f in sorted(os.listdir(os.path.join(directory, "testdata"))):
    if "testdata/" + f not in listed:
        schema_problems.append("testdata/%s is not a case of health_test.yaml" % f)
report(not schema_problems, "%s/testdata: %d objects fit the v1alpha1 schema of crds/kafkamirror.yaml, "
       "no unknown fields, all of them cases" % (directory, len(cases)), "\n".join(schema_problems))
write_cases(os.path.join(work, "cases.lua"), cases)

# Self-check inputs: the first case with a wrong status, and with a message one character off.
first = cases[0]
write_cases(os.path.join(work, "wrong_status.lua"),
            [dict(first, status="Healthy" if first["status"] != "Healthy" else "Degraded")])
write_cases(os.path.join(work, "wrong_message.lua"), [dict(first, message=first["message"] + ".")])
write_cases(os.path.join(work, "first.lua"), [first])

# The example Application.
app_path = os.path.join(directory, "application.yaml")
app = load(app_path)
spec = app.get("spec") or {}
sync = spec.get("syncPolicy") or {}
auto = sync.get("automated") or {}
wanted = [
    (app.get("apiVersion") == "argoproj.io/v1alpha1" and app.get("kind") == "Application", "an argoproj.io/v1alpha1 Application"),
    ((spec.get("destination") or {}).get("namespace") == "kafka-mirror", "destination.namespace kafka-mirror"),
    (bool((spec.get("source") or {}).get("repoURL")) and bool((spec.get("source") or {}).get("path")), "a source repoURL and path"),
    (auto.get("prune") is True and auto.get("selfHeal") is True, "automated sync with prune and selfHeal"),
    ("ServerSideApply=true" in (sync.get("syncOptions") or []), "the sync option ServerSideApply=true"),
]
missing = [what for ok, what in wanted if not ok]
report(not missing, "%s: %s" % (app_path, ", ".join(what for _, what in wanted)), "missing: " + ", ".join(missing))
PY

section "cases of $dir/health_test.yaml (health.lua under $(lua5.1 -v 2>&1 | cut -d' ' -f1-2))"
check lua5.1 "$harness" cases "$dir/health.lua" "$work/cases.lua"

section "robustness: no missing field makes health.lua fail"
check lua5.1 "$harness" robustness "$dir/health.lua" "$work/cases.lua"

section "self-checks: the harness fails when it should"
must_fail "a wrong expected status" lua5.1 "$harness" cases "$dir/health.lua" "$work/wrong_status.lua"
must_fail "a message one character off" lua5.1 "$harness" cases "$dir/health.lua" "$work/wrong_message.lua"
printf 'local t = nil\nreturn {status = t.status}\n' >"$work/raises.lua"
must_fail "a script that raises an error" lua5.1 "$harness" cases "$work/raises.lua" "$work/first.lua"
printf 'return {status = "Fine", message = ""}\n' >"$work/invalid_status.lua"
must_fail "a status Argo CD does not know" lua5.1 "$harness" cases "$work/invalid_status.lua" "$work/first.lua"
sed '1s/^/local unused = string.format("%d", 1)\n/' "$dir/health.lua" >"$work/string_library.lua"
must_fail "health.lua using the string library (not loaded for argocd-cm checks)" \
  lua5.1 "$harness" cases "$work/string_library.lua" "$work/first.lua"
sed '1s/^/local unused = ("x"):upper()\n/' "$dir/health.lua" >"$work/string_method.lua"
must_fail "health.lua calling a string method" lua5.1 "$harness" cases "$work/string_method.lua" "$work/first.lua"
printf 'return {status = obj.status.conditions[1].type == "Ready" and "Healthy" or "Progressing", message = ""}\n' \
  >"$work/fragile.lua"
must_fail "a script that indexes a missing field" lua5.1 "$harness" robustness "$work/fragile.lua" "$work/first.lua"

passed="$(grep -c '^ok ' "$results" || true)"
failed="$(grep -c '^FAILED ' "$results" || true)"
printf '\n%s passed, %s failed\n' "$passed" "$failed"
if [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi

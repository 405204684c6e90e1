#!/usr/bin/env bash
# Lints what CI and the kind suite are made of, since neither GitHub Actions nor kind runs on the build machines:
#   - the workflows, with actionlint (which also shellchecks their `run:` blocks);
#   - every shell script of the tree, tracked or not yet (git's ignore rules apply), and .ci/run, with shellcheck;
#   - the Dockerfiles: the runtime (last) stage of each has to switch to a non-root USER;
#   - the release: the crates, the chart and its appVersion name one version.
# Prints what it checked and exits non-zero on any finding.
# Usage: bash tests/lint-ci.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/tools.sh
source tests/tools.sh

findings=0

step() { printf '\n==> %s\n' "$*"; }
finding() {
  printf 'FINDING: %s\n' "$*" >&2
  findings=$((findings + 1))
}

# tree_files PATHSPEC...: files of the work tree matching the pathspecs, tracked or untracked but not ignored.
tree_files() {
  local file
  git ls-files --cached --others --exclude-standard -- "$@" | sort -u | while IFS= read -r file; do
    if [ -f "$file" ]; then printf '%s\n' "$file"; fi
  done
}

lint_workflows() {
  local workflows
  mapfile -t workflows < <(tree_files '.github/workflows/*.yml' '.github/workflows/*.yaml')
  step "actionlint $(actionlint --version | head -n 1 | awk '{ print $NF }'): ${#workflows[@]} workflow(s)"
  if [ ${#workflows[@]} -eq 0 ]; then
    finding "no workflow under .github/workflows"
    return
  fi
  printf '    %s\n' "${workflows[@]}"
  actionlint "${workflows[@]}" || finding "actionlint reported the problems above"
}

lint_scripts() {
  local scripts
  mapfile -t scripts < <(tree_files '*.sh')
  scripts+=(.ci/run)
  step "shellcheck $(shellcheck --version | awk '/^version:/ { print $2 }'): ${#scripts[@]} script(s)"
  printf '    %s\n' "${scripts[@]}"
  shellcheck --external-sources "${scripts[@]}" || finding "shellcheck reported the problems above"
}

# runtime_user DOCKERFILE: prints the base image of the last stage and the user its last USER instruction sets
# (empty when it sets none), tab-separated.
runtime_user() {
  awk '
    /^[ \t]*#/ { next }
    toupper($1) == "FROM" { base = ""; for (i = 2; i <= NF; i++) if ($i !~ /^--/) { base = $i; break }; user = "" }
    toupper($1) == "USER" { user = $2 }
    END { printf "%s\t%s\n", base, user }
  ' "$1"
}

check_dockerfiles() {
  local dockerfiles file base user
  mapfile -t dockerfiles < <(tree_files '*Dockerfile' '*Dockerfile.*' '*.dockerfile')
  step "Dockerfiles: the runtime stage runs as a non-root USER (${#dockerfiles[@]} file(s))"
  for file in "${dockerfiles[@]}"; do
    IFS=$'\t' read -r base user < <(runtime_user "$file")
    case "${user%%:*}" in
      "") finding "$file: the runtime stage (FROM $base) sets no USER, so it runs as the base image's user" ;;
      root | 0) finding "$file: the runtime stage (FROM $base) runs as USER $user" ;;
      *) printf '    %s: runtime stage FROM %s, USER %s\n' "$file" "$base" "$user" ;;
    esac
  done
}

check_release_versions() {
  step "the release's versions (tests/release/check-versions.sh, which .github/workflows/release.yml runs with the tag)"
  bash tests/release/check-versions.sh || finding "the crates and the chart name different versions"
}

lint_workflows
lint_scripts
check_dockerfiles
check_release_versions

if [ "$findings" -gt 0 ]; then
  step "lint-ci: $findings finding(s)"
  exit 1
fi
step "lint-ci: no findings"

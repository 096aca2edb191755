#!/usr/bin/env python3
"""Docs match code: every command the documents show exists, and every configuration key is
documented.

- Each `pylon …`, `pylon-registry …` and `pylon-agent …` command written in a code span or a
  code block of README.md, docs/*.md and deploy/**/*.md is run with --help: its subcommands
  must exist (exit 0), and every --flag written with it must appear in that help.
- Every key pylon-registry reads (deploy/config/registry.toml sets them all; the package test
  checks that) has a row in docs/OPERATIONS.md's configuration table.

Usage: docs_commands_test.py BIN_DIR SOURCE_DIR
"""
import pathlib
import re
import subprocess
import sys

bin_dir, src = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
docs = [src / "README.md", *sorted((src / "docs").glob("*.md")), *sorted((src / "deploy").rglob("*.md"))]
programs = ("pylon", "pylon-registry", "pylon-agent")
failures = []
help_cache = {}


def help_text(words):
    key = tuple(words)
    if key not in help_cache:
        r = subprocess.run([str(bin_dir / words[0]), *words[1:], "--help"],
                           capture_output=True, text=True, timeout=30)
        help_cache[key] = (r.returncode, r.stdout + r.stderr)
    return help_cache[key]


def commands(text):
    """Command lines from code spans and fenced blocks (continuations joined)."""
    out = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        block = block.replace("\\\n", " ")
        for line in block.splitlines():
            line = line.strip()
            for part in re.split(r"\s*(?:&&|\|\||;|\||\$\()\s*", line):
                out.append(part.strip())
    for span in re.findall(r"`([^`\n]+)`", text):
        out.append(span.strip())
    return out


checked = 0
for doc in docs:
    text = doc.read_text()
    for cmd in commands(text):
        cmd = re.sub(r"^(sudo|exec|nohup)\s+", "", cmd)
        words = cmd.split()
        if not words:
            continue
        prog = words[0].split("/")[-1]
        if prog not in programs:
            continue
        # Subcommands: leading lower-case words (not arguments such as acme/x@1.0 or paths).
        sub = []
        for w in words[1:]:
            if re.fullmatch(r"[a-z][a-z0-9-]*", w):
                sub.append(w)
            else:
                break
        # Longest prefix of `sub` that the program accepts as subcommands.
        path = [prog]
        for w in sub:
            code, out = help_text(path + [w])
            # CLI11 answers an unknown word after a leaf command with an error (not 0) or, when
            # the leaf takes positionals, with the leaf's own help: keep a word only when it
            # changes the help (a real subcommand).
            if code == 0 and out != help_text(path)[1]:
                path.append(w)
            else:
                break
        code, out = help_text(path)
        checked += 1
        rest = sub[len(path) - 1:]
        if code == 0 and rest and "Subcommands:" in out and "Positionals:" not in out:
            failures.append(f"{doc.relative_to(src)}: `{cmd}`: {' '.join(path)} has no subcommand {rest[0]}")
            continue
        if code != 0:
            failures.append(f"{doc.relative_to(src)}: `{cmd}`: `{' '.join(path)} --help` exits {code}")
            continue
        own = re.split(r"\s--(?:\s|$)", cmd)[0]  # after "--": another program's arguments
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", own):
            if flag in ("--help",):
                continue
            if flag not in out:
                failures.append(f"{doc.relative_to(src)}: `{cmd}`: {' '.join(path)} has no {flag}")

# Registry configuration keys: every key of deploy/config/registry.toml in OPERATIONS.md's table.
ops = (src / "docs" / "OPERATIONS.md").read_text()
keys = re.findall(r"^([a-z_]+)\s*=", (src / "deploy" / "config" / "registry.toml").read_text(), re.M)
if len(keys) < 20:
    failures.append(f"only {len(keys)} keys found in deploy/config/registry.toml")
for k in keys:
    if not re.search(r"^\|[^|\n]*`" + re.escape(k) + r"`", ops, re.M):
        failures.append(f"docs/OPERATIONS.md: the [registry] key {k} has no table row")

print(f"docs_commands_test: {checked} command mentions checked, {len(keys)} registry keys")
if checked < 50:
    failures.append(f"only {checked} command mentions found: the extraction is broken")
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)

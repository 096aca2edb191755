# Sourced by build.sh and build_native.sh: in the current directory, llama.cpp b4753's source
# as the npm package node-llama-cpp 3.6.0 ships it (a git bundle), cloned into ./llama.cpp.
[ -f node-llama-cpp-3.6.0.tgz ] || npm pack node-llama-cpp@3.6.0 >/dev/null
tar xzf node-llama-cpp-3.6.0.tgz package/llama/gitRelease.bundle package/llama/binariesGithubRelease.json
grep -q '"b4753"' package/llama/binariesGithubRelease.json
[ -d llama.cpp ] || git clone -q package/llama/gitRelease.bundle llama.cpp

#!/usr/bin/env bash
# Entrypoint of the ablator image.
#   <image> launch study.yaml      -> ablator launch study.yaml
#   <image> ray start --head ...   -> ray start --head ...
#   <image> bash | sh | python ... -> that command (the Ray cluster launcher
#                                     starts its containers with `bash`)
set -euo pipefail

case "${1:-}" in
    "")
        exec ablator --help ;;
    ablator | ray | bash | sh | python | python3 | pip | pytest)
        exec "$@" ;;
    *)
        exec ablator "$@" ;;
esac

#!/usr/bin/env bash
# The published smollm2-135m results (both directions; FF abs, attention abs, FF random x 3 seeds).
exec "$(dirname "$0")/publish.sh" smollm2-135m

#!/usr/bin/env bash
# Builds and installs the FusedAdamwGroup custom operator package (op_host +
# op_kernel of this directory) with CANN's tooling, through the custom-operator
# compiler shipped in the MindSpore wheel (mindspore/lib/plugin/ascend/custom_compiler:
# it instantiates CANN's Ascend C operator-project template, copies our top-level
# op_host/*.cpp|h and op_kernel/*.cpp|h into it, runs its build.sh and the
# resulting .run installer).
#
# Needs a CANN toolkit (source its set_env.sh so ASCEND_HOME_PATH is set) and
# MindSpore for the interpreter in $PYTHON (default python3). Never run in CI.
#
# Usage: kernels/ascend/build_opp.sh BUILD_DIR [INSTALL_DIR]
#   INSTALL_DIR defaults to BUILD_DIR/opp; the package lands in
#   INSTALL_DIR/vendors/fused_adamw, which goes on ASCEND_CUSTOM_OPP_PATH.
# SOC_VERSION (default ascend910b) picks the target chip family.
set -euo pipefail

: "${ASCEND_HOME_PATH:?set up CANN first: source <cann>/set_env.sh}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(mkdir -p "${1:?usage: build_opp.sh BUILD_DIR [INSTALL_DIR]}" && cd "$1" && pwd)
install=$(mkdir -p "${2:-$build/opp}" && cd "${2:-$build/opp}" && pwd)
python=${PYTHON:-python3}

ms_dir=$("$python" -c "import mindspore, os; print(os.path.dirname(mindspore.__file__))")
# setup.py builds in its own directory: work on a copy, not inside site-packages.
rm -rf "$build/custom_compiler"
cp -r "$ms_dir/lib/plugin/ascend/custom_compiler" "$build/custom_compiler"
cd "$build/custom_compiler"
"$python" setup.py \
    --op_host_path "$here/op_host" \
    --op_kernel_path "$here/op_kernel" \
    --soc_version "${SOC_VERSION:-ascend910b}" \
    --vendor_name fused_adamw \
    --ascend_cann_package_path "$ASCEND_HOME_PATH" \
    --install_path "$install"

test -f "$install/vendors/fused_adamw/op_api/include/aclnn_fused_adamw_group.h"
echo "Installed. Use it with:"
echo "  export ASCEND_CUSTOM_OPP_PATH=$install/vendors/fused_adamw:\${ASCEND_CUSTOM_OPP_PATH:-}"

"""Finding the CUDA tools the static tests need: nvcc (a CUDA toolkit) and
cuobjdump/nvdisasm (PyPI: nvidia-cuda-cuobjdump, nvidia-cuda-nvdisasm)."""
import os
import re
import shutil
from pathlib import Path


def find_nvcc():
    """nvcc from $CUDACXX, PATH or /usr/local/cuda, or None."""
    candidates = [os.environ.get("CUDACXX"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def find_cuobjdump():
    """(cuobjdump, environment in which it finds nvdisasm), or (None, None)."""
    dirs = []
    try:
        import nvidia  # namespace package of NVIDIA's PyPI wheels

        dirs += [Path(p) / sub / "bin" for p in nvidia.__path__ for sub in ("cu13", "cuda_cuobjdump", "cuda_nvdisasm")]
    except ImportError:
        pass
    dirs += [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    tool = next((d / "cuobjdump" for d in dirs if (d / "cuobjdump").is_file()), None)
    disasm = next((d / "nvdisasm" for d in dirs if (d / "nvdisasm").is_file()), None)
    if tool is None or disasm is None:
        return None, None
    env = dict(os.environ, PATH=f"{disasm.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return str(tool), env


def sass_by_arch(text):
    """cuobjdump -sass output -> {"sm_80": {function name: SASS text}, ...}."""
    out = {}
    # Each embedded cubin starts with a header naming its arch; its functions follow.
    for block in re.split(r"\n(?=\s*arch = sm_)", text)[1:]:
        arch = re.match(r"\s*arch = (sm_\d+)", block).group(1)
        funcs = out.setdefault(arch, {})
        for part in re.split(r"\n\s*Function : ", block)[1:]:
            name, _, body = part.partition("\n")
            funcs[name.strip()] = body
    return out


def ptxas_function_reports(text):
    """ptxas -v output -> [(arch, function, properties line, usage line)]."""
    reports = []
    arch = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.search(r"Compiling entry function '([^']+)' for '(sm_\d+)'", line)
        if m:
            arch = m.group(2)
        m = re.search(r"Function properties for (\S+)", line)
        if m and i + 1 < len(lines):
            usage = next((lines[j] for j in range(i + 2, min(i + 4, len(lines))) if "Used" in lines[j]), "")
            reports.append((arch, m.group(1), lines[i + 1].strip(), usage.strip()))
    return reports

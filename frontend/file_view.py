"""The page of one file of a version (`/adapters/{ns}/{name}/versions/{version}/files/{path}`): what the file
holds, shown rather than only offered as a download. A JSON file is shown pretty-printed, a Markdown file
rendered by the README renderer (markdown-it-py, sanitised by nh3: hub.registry.readme), a safetensors file as
its header (tensor names, dtypes and shapes), other text as text.

A web process reads a bounded amount of any file: text files up to `SHOWN_TEXT_BYTES`, a safetensors header up
to `SHOWN_HEADER_BYTES` and never a tensor byte, and the table lists at most `SHOWN_TENSORS` tensors."""

import json
from dataclasses import dataclass, field

from django.http import Http404
from django.shortcuts import render

from frontend.base import AdapterPageView
from hub.registry.choices import VersionStatus
from hub.registry.models import VersionFile
from hub.registry.permissions import role_in
from hub.registry.readme import render_readme
from hub.registry.resolution import file_path
from hub.registry.storage import open_blob
from hub.validation.safetensors_header import SafetensorsHeaderError, read_safetensors_header_from

# Config files are kilobytes and READMEs are bounded on upload (ADAPTERHUB_MAX_README_BYTES); this bounds a page
# that shows some other large text file.
SHOWN_TEXT_BYTES = 1024 * 1024
# An adapter's header names a few thousand tensors at most (well under a megabyte); a bigger one is not shown.
SHOWN_HEADER_BYTES = 8 * 1024 * 1024
SHOWN_TENSORS = 1000
TEXT_SUFFIXES = (".txt", ".py", ".yaml", ".yml", ".cfg", ".bib")


@dataclass
class FilePreview:
    """What the page shows of a file: `kind` is json, markdown, safetensors, text or none; `note` says why a
    file is shown in part or not at all."""

    kind: str
    text: str = ""
    html: str = ""
    tensors: list = field(default_factory=list)
    tensor_count: int = 0
    parameter_count: int = 0
    metadata: dict = field(default_factory=dict)
    note: str = ""


def _read_text(version_file: VersionFile) -> tuple[str, bool]:
    """The file's text (at most SHOWN_TEXT_BYTES) and whether it was cut."""
    with open_blob(version_file.blob) as handle:
        data = handle.read(SHOWN_TEXT_BYTES + 1)
    return data[:SHOWN_TEXT_BYTES].decode("utf-8", errors="replace"), len(data) > SHOWN_TEXT_BYTES


def preview(version_file: VersionFile) -> FilePreview:
    """What the page shows of `version_file`, read within the module's bounds."""
    name = version_file.name.lower()
    cut_note = f"The file is larger than {SHOWN_TEXT_BYTES // 1024} KiB; the first {SHOWN_TEXT_BYTES // 1024} KiB are shown."
    if name.endswith(".safetensors"):
        return _safetensors_preview(version_file)
    if name.endswith(".json"):
        text, cut = _read_text(version_file)
        if cut:
            return FilePreview("text", text=text, note=cut_note)
        try:
            return FilePreview("json", text=json.dumps(json.loads(text), indent=2, ensure_ascii=False))
        except ValueError as exc:
            return FilePreview("text", text=text, note=f"The file is not valid JSON ({exc}); shown as text.")
    if name.endswith(".md"):
        text, cut = _read_text(version_file)
        return FilePreview("markdown", html=render_readme(text), note=cut_note if cut else "")
    if name.endswith(TEXT_SUFFIXES):
        text, cut = _read_text(version_file)
        return FilePreview("text", text=text, note=cut_note if cut else "")
    return FilePreview(
        "none", note="This file is binary (a pickle or another format); download it to look inside."
    )


def _safetensors_preview(version_file: VersionFile) -> FilePreview:
    try:
        with open_blob(version_file.blob) as handle:
            header = read_safetensors_header_from(handle, version_file.blob.size, SHOWN_HEADER_BYTES)
    except SafetensorsHeaderError as exc:
        return FilePreview("none", note=f"The header cannot be shown: {exc}")
    tensors = sorted(header.tensors.values(), key=lambda entry: entry.name)
    note = ""
    if len(tensors) > SHOWN_TENSORS:
        note = f"The first {SHOWN_TENSORS} of {len(tensors)} tensors (by name) are listed."
    return FilePreview(
        "safetensors",
        tensors=tensors[:SHOWN_TENSORS],
        tensor_count=len(tensors),
        parameter_count=sum(entry.numel for entry in tensors),
        metadata=header.metadata,
        note=note,
    )


class VersionFilePage(AdapterPageView):
    """One file of one version. Everyone who may see the adapter sees a valid version's files; a version that is
    not valid (yet) shows its files' contents to the namespace's members only, as the download route does."""

    def get(self, request, namespace, name, version, file_name):
        adapter = self.get_adapter(namespace, name, prepare=lambda adapters: adapters.with_related())
        found = adapter.versions.filter(version=version).first()
        if found is None:
            raise Http404(f"{adapter.full_name} has no version {version}.")
        if found.status != VersionStatus.VALID and not role_in(request.user, adapter.namespace):
            raise Http404(f"Version {version} of {adapter.full_name} is not valid; its files are not shown.")
        version_file = (
            VersionFile.objects.served().filter(version=found, name=file_name).select_related("blob").first()
        )
        if version_file is None:
            raise Http404(f"Version {version} of {adapter.full_name} has no file {file_name}.")
        context = {
            "adapter": adapter,
            "version": found,
            "file": version_file,
            "preview": preview(version_file),
            "download_path": file_path(adapter, found.version, version_file.name)
            if found.status == VersionStatus.VALID
            else "",
        }
        return render(request, "frontend/version_file.html", context)

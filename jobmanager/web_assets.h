// The dashboard's files (jobmanager/web/), embedded into the JobManager at build time: the
// generated web_assets.cc (cmake/EmbedWebAssets.cmake) defines WebAssetFiles().
#pragma once

#include <span>
#include <string_view>

namespace sluice {

struct WebAssetFile {
  std::string_view name;  // the path under jobmanager/web/, e.g. "app.js"
  std::string_view body;  // the file's bytes
};

// Every embedded file.
std::span<const WebAssetFile> WebAssetFiles();

// The embedded file `name`, or nullptr when there is none.
const WebAssetFile* FindWebAsset(std::string_view name);

// The Content-Type a file is served with, from its extension (application/octet-stream for an
// extension not listed).
std::string_view WebAssetContentType(std::string_view name);

}  // namespace sluice

// akv inspect: metadata and tensor table of a GGUF file (any architecture).
#include <cstdio>

#include "common.h"
#include "io/gguf.h"

namespace akv::cli {

namespace {

struct InspectFlags {
  std::string model;
  bool no_tensors = false;
  bool no_metadata = false;
};

int Run(const InspectFlags& f) {
  auto g = GgufFile::Open(f.model);
  if (!g.ok()) return ReportError(g.status());
  const GgufFile& file = **g;
  std::printf("%s: GGUF v%u, %s, %zu metadata keys, %zu tensors, alignment %u\n", f.model.c_str(), file.version(),
              HumanBytes(file.file_size()).c_str(), file.keys().size(), file.tensors().size(), file.alignment());
  if (!f.no_metadata) {
    std::printf("\n%-45s %-8s %s\n", "key", "type", "value");
    for (const std::string& k : file.keys()) {
      const GgufValue* v = file.Find(k);
      std::printf("%-45s %-8s %s\n", k.c_str(), GgufTypeName(v->type), v->ToString().c_str());
    }
  }
  if (!f.no_tensors) {
    std::printf("\n%-5s %-32s %-6s %-20s %12s %12s\n", "#", "tensor", "type", "shape", "bytes", "offset");
    int64_t total = 0, params = 0;
    int i = 0;
    for (const GgufTensor& t : file.tensors()) {
      std::printf("%-5d %-32s %-6s %-20s %12zu %12llu\n", i++, t.name.c_str(), TypeName(t.type), t.ShapeString().c_str(),
                  t.bytes, static_cast<unsigned long long>(t.offset));
      total += static_cast<int64_t>(t.bytes);
      params += t.n_elements();
    }
    std::printf("\n%lld parameters, %s of tensor data\n", static_cast<long long>(params), HumanBytes(total).c_str());
  }
  return 0;
}

}  // namespace

void RegisterInspect(CLI::App& app) {
  auto f = std::make_shared<InspectFlags>();
  CLI::App* sub = app.add_subcommand("inspect", "Show the metadata and tensor table of a GGUF file");
  sub->add_option("-m,--model,model", f->model, "GGUF file")->required();
  sub->add_flag("--no-tensors", f->no_tensors, "Skip the tensor table");
  sub->add_flag("--no-metadata", f->no_metadata, "Skip the metadata");
  sub->callback([f] {
    int rc = Run(*f);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace akv::cli

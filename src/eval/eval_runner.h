// Runs an expanded eval grid on one engine and returns one record per item.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "akv/akv.hpp"
#include "eval/eval_grid.h"
#include "eval/eval_results.h"
#include "eval/filler.h"
#include "eval/recall_prompt.h"

namespace akv {

struct EvalOptions {
  const FillerCorpus* filler = nullptr;  // recall, multifact, multiquery
  std::string ppl_text;                  // ppl: the text (llama.cpp convention, chunks of the context)
  int ppl_chunks = 1;
  std::string reference_cache = "full";  // ppl: KL divergence and top-1 agreement against this
  int n_facts = 4;                       // multifact
  int value_digits = 5;
  std::vector<FactTemplate> templates;   // empty: all
  // Called after every item with (items done, total, the item's record).
  std::function<void(size_t, size_t, const EvalRecord&)> progress;
};

KvGeometry GeometryOf(const Engine& engine);

// Builds the prompt of a recall item (the same for every method of that point).
StatusOr<RecallPrompt> BuildItemPrompt(const Engine& engine, const GridItem& item, const GridSpec& grid,
                                       const EvalOptions& options);

// Items whose cache cannot be created (e.g. a method not built yet) are recorded with an error
// and the run goes on; any other failure stops the run.
StatusOr<std::vector<EvalRecord>> RunGrid(Engine& engine, const GridSpec& grid, const std::vector<GridItem>& items,
                                          const EvalOptions& options);

}  // namespace akv

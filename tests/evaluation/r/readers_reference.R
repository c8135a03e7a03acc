# Reference values for tests/evaluation/test_readers.py (run: Rscript readers_reference.R > readers_reference.out)
# Data: Van Dyke reads (../data/VanDyke.lrc); modality "1" (SE MRI) plays "aided", modality "0" "unaided".
suppressMessages(library(pROC))
lines <- readLines("../data/VanDyke.lrc")[-1]
rating <- list(); truth <- integer(114); i <- 1; status <- 0
while (lines[i] != "#") {
  reader <- as.integer(lines[i]); i <- i + 1
  if (startsWith(lines[i], "\"")) i <- i + 2
  for (st in 0:1) {
    while (lines[i] != "*") {
      f <- as.numeric(strsplit(lines[i], "\t")[[1]])
      rating[[paste(0, reader, f[3])]] <- f[1]; rating[[paste(1, reader, f[3])]] <- f[2]
      truth[f[3] + 1] <- st; i <- i + 1
    }
    i <- i + 1
  }
}
get <- function(m, r) sapply(0:113, function(c) rating[[paste(m, r, c)]])
for (r in 0:4) {
  u <- roc(truth, get(0, r), levels = c(0, 1), direction = "<", quiet = TRUE)
  a <- roc(truth, get(1, r), levels = c(0, 1), direction = "<", quiet = TRUE)
  t <- roc.test(a, u, method = "delong", paired = TRUE)
  ci <- ci.auc(u, method = "delong")
  cat(sprintf("reader %d: auc_unaided %.10f ci %.10f %.10f | auc_aided %.10f | diff z %.10f p %.10f ci %.10f %.10f\n",
              r + 1, auc(u), ci[1], ci[3], auc(a), t$statistic, t$p.value, t$conf.int[1], t$conf.int[2]))
}
# Exact McNemar on the positives of reader 5 (calls = rating >= 3), aided vs unaided
r <- 4; ca <- get(1, r)[truth == 1] >= 3; cu <- get(0, r)[truth == 1] >= 3
b <- sum(ca & !cu); c <- sum(!ca & cu)
cat(sprintf("reader 5 positives: aided-only %d unaided-only %d exact p %.10f\n", b, c,
            binom.test(b, b + c, 0.5)$p.value))

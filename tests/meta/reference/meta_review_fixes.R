# Reference values for the review fixes of nodescope.meta (tests/meta/test_univariate.py, test_reitsma.py).
# Run from the repository root:
#   Rscript tests/meta/reference/meta_review_fixes.R > tests/meta/reference/meta_review_fixes.out
# Output lines: <block> <data set> <quantity> <value>, values with 10 significant digits.
suppressMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
ddir <- if (length(args)) args[1] else "../shared/data/dta_examples"
rd <- function(nm) read.csv(file.path(ddir, paste0(nm, ".csv")))
out <- function(...) cat(paste(...), "\n")
fmt <- function(x) format(x, digits = 10)
cat("# R", R.version$major, R.version$minor, "metafor", as.character(packageVersion("metafor")), "\n")
cc_only0 <- function(d) { z <- apply(d[, c("TP","FN","FP","TN")] == 0, 1, any); a <- ifelse(z, 0.5, 0)
  with(d, data.frame(TP = TP + a, FN = FN + a, FP = FP + a, TN = TN + a)) }

## 1. t-based prediction interval with k-2 df (Higgins, Thompson & Spiegelhalter 2009; Riley et al. 2011):
##    predict(rma(yi, vi, method = "REML"), pi.type = "riley")  ->  mu +- qt(1 - alpha/2, k - 2) sqrt(tau2 + se^2)
for (nm in c("AuditC", "skin_tests")) {
  c <- cc_only0(rd(nm))
  ms <- list(logit_sens = list(y = log(c$TP / c$FN), v = 1/c$TP + 1/c$FN),
             log_dor = list(y = log(c$TP * c$TN / (c$FP * c$FN)), v = 1/c$TP + 1/c$FN + 1/c$FP + 1/c$TN))
  for (m in names(ms)) {
    f <- rma(ms[[m]]$y, ms[[m]]$v, method = "REML", control = list(threshold = 1e-12, maxiter = 10000))
    p <- predict(f, pi.type = "riley")
    key <- paste("pi_riley", nm, m)
    out(key, "pi_lb", fmt(p$pi.lb)); out(key, "pi_ub", fmt(p$pi.ub))
  }
}

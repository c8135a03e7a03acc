# Reference values for several cohorts per study (tests/meta/test_multilevel.py): the cluster-robust (sandwich)
# variance of the bivariate Reitsma model and the three-level bivariate model (cohorts within studies), on IAQ, SAQ
# and smoking of mada 0.5.12 (../shared/data/dta_examples; study_id = study, each row = one cohort/result).
# Run from the repository root:
#   Rscript tests/meta/reference/meta_multilevel.R > tests/meta/reference/meta_multilevel.out
# Output lines: <block> <data set> <quantity> <value(s)>, 10 significant digits.
# Continuity correction as nodescope's reitsma() default (mada's correction.control = "all"): 0.5 added to every
# cell of every cohort when any cell of any cohort is zero (all three sets have zeros).
# Block "sandwich" recomputes the CR1 sandwich by its formula in base R, independently of metafor::robust():
#   V = m/(m-p) B (sum_c X_c' W_c e_c e_c' W_c X_c) B,  B = (X' W X)^-1,  W = M^-1 (marginal), e = y - X b.
suppressMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
ddir <- if (length(args)) args[1] else "../shared/data/dta_examples"
out <- function(...) cat(paste(...), "\n")
fmt <- function(x) paste(format(x, digits = 10), collapse = " ")
cat("# R", R.version$major, R.version$minor, "metafor", as.character(packageVersion("metafor")), "\n")
ctrl <- list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)

long <- function(d) {
  a <- if (any(d[, c("TP", "FN", "FP", "TN")] == 0)) 0.5 else 0
  tp <- d$TP + a; fn <- d$FN + a; fp <- d$FP + a; tn <- d$TN + a
  data.frame(yi = c(log(tp / fn), log(tn / fp)), vi = c(1/tp + 1/fn, 1/tn + 1/fp),
             outcome = factor(rep(c("sens", "spec"), each = nrow(d))),
             study = rep(d$study_id, 2), cohort = rep(d$study, 2))
}

for (nm in c("IAQ", "SAQ", "smoking")) {
  d <- read.csv(file.path(ddir, paste0(nm, ".csv")))
  L <- long(d)
  # working-independence Reitsma fit (one random effect per cohort), REML, then robust() clustered by study
  f0 <- rma.mv(yi, vi, mods = ~ 0 + outcome, random = ~ outcome | cohort, struct = "UN", data = L,
               method = "REML", control = list(optimizer = "nlminb", optCtrl = ctrl))
  rob <- robust(f0, cluster = L$study, adjust = TRUE)
  out("robust", nm, "coef", fmt(coef(rob)))
  out("robust", nm, "vcov", fmt(as.vector(vcov(rob))))
  out("robust", nm, "model_vcov", fmt(as.vector(vcov(f0))))
  out("robust", nm, "n_clusters", length(unique(L$study)), "dfs", fmt(rob$dfs))
  # the same sandwich by its formula
  X <- model.matrix(~ 0 + outcome, data = L); W <- solve(f0$M); e <- L$yi - X %*% coef(f0)
  B <- solve(t(X) %*% W %*% X); S <- W %*% e
  meat <- Reduce(`+`, lapply(split(seq_len(nrow(L)), L$study), function(i) {
    u <- t(X[i, , drop = FALSE]) %*% S[i, , drop = FALSE]; u %*% t(u) }))
  m <- length(unique(L$study)); p <- ncol(X)
  out("sandwich", nm, "vcov", fmt(as.vector(m / (m - p) * B %*% meat %*% B)))
  # three-level bivariate model: study effects (UN) + cohort-within-study effects (UN)
  for (meth in c("REML", "ML")) {
    f3 <- rma.mv(yi, vi, mods = ~ 0 + outcome, random = list(~ outcome | study, ~ outcome | cohort),
                 struct = c("UN", "UN"), data = L, method = meth,
                 control = list(optimizer = "nlminb", optCtrl = ctrl))
    key <- paste("threelevel", nm, meth)
    out(key, "coef", fmt(coef(f3)))
    out(key, "se", fmt(f3$se))
    out(key, "tau2_study", fmt(f3$tau2), "rho_study", fmt(f3$rho))
    out(key, "tau2_cohort", fmt(f3$gamma2), "rho_cohort", fmt(f3$phi))
    out(key, "loglik", fmt(as.numeric(logLik(f3))))
  }
}

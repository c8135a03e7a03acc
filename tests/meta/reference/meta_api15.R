# Reference values for issue 15 (meta-analysis errors and the real example) of nodescope.meta
# (tests/meta/test_api15.py). Run from the repository root:
#   Rscript tests/meta/reference/meta_api15.R > tests/meta/reference/meta_api15.out
# Output lines: <block> <data set> <key> <value>, values with 10 significant digits.
# mada is not installed (and there is no network): the Moses-Littenberg regression, its curve and the areas are
# computed here in base R from their documented formulas (Moses, Shapiro & Littenberg, Stat Med 1993;12:1293;
# mada's R/mslSROC.R and R/AUC.R, read from its source: lm(D ~ S) on logits with 0.5 added to every cell of every
# study when any cell is zero; AUC.default = trapezoid sum on fpr = 1:99/100 divided by n = 99).
suppressMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
ddir <- if (length(args)) args[1] else "../shared/data/dta_examples"
out <- function(...) cat(paste(...), "\n")
fmt <- function(x) format(x, digits = 10)
cat("# R", R.version$major, R.version$minor, "metafor", as.character(packageVersion("metafor")), "\n")
ctl <- list(threshold = 1e-12, maxiter = 10000)

# Zeros in ONE arm only: FP = 0 in cohorts 1 and 7 (their diseased arm has no zero), FN = 0 in cohort 3.
onearm <- data.frame(TP = c(24, 28, 34, 32, 23, 38, 19, 41), FN = c(3, 11, 0, 2, 9, 4, 2, 16),
                     FP = c(0, 3, 6, 9, 6, 5, 0, 12), TN = c(42, 55, 60, 46, 40, 51, 30, 70))
# mada's AuditC (as in tests/meta/_dta_data.py)
auditc <- data.frame(
  TP = c(47, 126, 19, 36, 130, 84, 68, 752, 59, 142, 137, 57, 34, 152),
  FN = c(9, 51, 10, 3, 19, 2, 0, 0, 5, 50, 24, 3, 1, 51),
  FP = c(101, 272, 12, 78, 211, 68, 112, 3226, 55, 571, 107, 103, 21, 88),
  TN = c(738, 1543, 192, 276, 959, 89, 423, 2977, 136, 2788, 358, 437, 56, 264))
cc_studies <- function(d) { z <- apply(d[, c("TP", "FN", "FP", "TN")] == 0, 1, any); a <- ifelse(z, 0.5, 0)
  data.frame(TP = d$TP + a, FN = d$FN + a, FP = d$FP + a, TN = d$TN + a) }
cc_all <- function(d) { a <- if (any(d[, c("TP", "FN", "FP", "TN")] == 0)) 0.5 else 0
  data.frame(TP = d$TP + a, FN = d$FN + a, FP = d$FP + a, TN = d$TN + a) }
show_rma <- function(key, f) {
  out(key, "mu", fmt(as.numeric(f$beta))); out(key, "se", fmt(f$se)); out(key, "tau2", fmt(f$tau2))
  out(key, "Q", fmt(f$QE)); out(key, "I2", fmt(f$I2))
}

## 1. Univariate pooling with zeros in one arm, both rules, DL and REML.
##    measure-cells-with-zero = metafor's own convention: escalc(measure = "PLO"/"OR", add = 1/2, to = "only0"),
##    which looks only at the cells of the measure (PLO: xi, mi).
##    studies-with-zero = 0.5 added to all four cells of each cohort with any zero, then the same formulas.
for (meth in c("DL", "REML")) {
  e <- list(
    logit_sens = escalc(measure = "PLO", xi = TP, mi = FN, data = onearm, add = 1/2, to = "only0"),
    logit_spec = escalc(measure = "PLO", xi = TN, mi = FP, data = onearm, add = 1/2, to = "only0"),
    log_dor = escalc(measure = "OR", ai = TP, bi = FN, ci = FP, di = TN, data = onearm, add = 1/2, to = "only0"))
  for (m in names(e)) show_rma(paste("uni", "onearm", m, meth, "measure-cells-with-zero"),
                                rma(yi, vi, data = e[[m]], method = meth, control = ctl))
  c <- cc_studies(onearm)
  e <- list(
    logit_sens = escalc(measure = "PLO", xi = TP, mi = FN, data = c, add = 0),
    logit_spec = escalc(measure = "PLO", xi = TN, mi = FP, data = c, add = 0),
    log_dor = escalc(measure = "OR", ai = TP, bi = FN, ci = FP, di = TN, data = c, add = 0))
  for (m in names(e)) show_rma(paste("uni", "onearm", m, meth, "studies-with-zero"),
                                rma(yi, vi, data = e[[m]], method = meth, control = ctl))
}

## 2. Reitsma (rma.mv, struct = "UN", REML) on logits corrected by escalc("PLO", to = "only0") per measure.
es <- escalc(measure = "PLO", xi = TP, mi = FN, data = onearm, add = 1/2, to = "only0")
ep <- escalc(measure = "PLO", xi = TN, mi = FP, data = onearm, add = 1/2, to = "only0")
k <- nrow(onearm)
long <- data.frame(study = rep(1:k, each = 2), outcome = factor(rep(c("sens", "spec"), k)),
                   yi = as.vector(rbind(es$yi, ep$yi)), vi = as.vector(rbind(es$vi, ep$vi)))
f <- rma.mv(yi, vi, mods = ~ outcome - 1, random = ~ outcome | study, struct = "UN", data = long,
            method = "REML", control = list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-14))
key <- "reitsma onearm measure-cells-with-zero"  # (nlminb stops with convergence = 1 here; BFGS converges)
out(key, "mu_sens", fmt(f$beta[1])); out(key, "mu_spec", fmt(f$beta[2]))
out(key, "se_sens", fmt(f$se[1])); out(key, "se_spec", fmt(f$se[2]))
out(key, "tau2_sens", fmt(f$tau2[1])); out(key, "tau2_spec", fmt(f$tau2[2])); out(key, "rho", fmt(f$rho))

## 3. Moses-Littenberg SROC (mada::mslSROC formulas): D = logit sens - logit FPR, S = logit sens + logit FPR,
##    lm(D ~ S); SROC logit(sens) = A/(1-B) + (1+B)/(1-B) logit(FPR); AUC by integrate() over (0, 1); partial AUC
##    over the observed FPR range (raw counts), and its normalised form (divided by the range's width).
line_area <- function(a, b, lo, hi) integrate(function(t) plogis(a + b * qlogis(t)), lo, hi,
                                              rel.tol = 1e-12, abs.tol = 1e-14)$value
for (nm in c("onearm", "auditc")) {
  d <- get(nm); c <- cc_all(d)
  ls <- log(c$TP / c$FN); lf <- log(c$FP / c$TN)
  fit <- lm(I(ls - lf) ~ I(ls + lf))
  A <- unname(coef(fit)[1]); B <- unname(coef(fit)[2]); se <- unname(sqrt(diag(vcov(fit))))
  a <- A / (1 - B); b <- (1 + B) / (1 - B)
  fpr <- d$FP / (d$FP + d$TN); lo <- min(fpr); hi <- max(fpr)
  key <- paste("moses", nm)
  out(key, "A", fmt(A)); out(key, "B", fmt(B)); out(key, "A_se", fmt(se[1])); out(key, "B_se", fmt(se[2]))
  out(key, "a", fmt(a)); out(key, "b", fmt(b)); out(key, "auc", fmt(line_area(a, b, 0, 1)))
  p <- line_area(a, b, lo, hi)
  out(key, "fpr_low", fmt(lo)); out(key, "fpr_high", fmt(hi))
  out(key, "pauc", fmt(p)); out(key, "pauc_normalised", fmt(p / (hi - lo)))
}

## 4. Rutter-Gatsonis SROC of the Reitsma REML fit of AuditC (0.5 in every cell of every study: mada's rule), via
##    rma.mv: slope b = tau_sens / tau_spec, intercept a = mu_sens + b mu_spec. Exact AUC (integrate over (0, 1)),
##    partial AUC over the observed FPR range, and what mada's AUC()/pAUC would print from the same fit
##    (AUC.default: trapezoid sum on 99 points divided by 99; pAUC on 99 points across the observed range,
##    clipped to [0.01, 0.99]).
c <- cc_all(auditc)
es <- escalc(measure = "PLO", xi = TP, mi = FN, data = c, add = 0)
ep <- escalc(measure = "PLO", xi = TN, mi = FP, data = c, add = 0)
k <- nrow(c)
long <- data.frame(study = rep(1:k, each = 2), outcome = factor(rep(c("sens", "spec"), k)),
                   yi = as.vector(rbind(es$yi, ep$yi)), vi = as.vector(rbind(es$vi, ep$vi)))
f <- rma.mv(yi, vi, mods = ~ outcome - 1, random = ~ outcome | study, struct = "UN", data = long,
            method = "REML", control = list(rel.tol = 1e-10, iter.max = 10000, eval.max = 10000))
b <- sqrt(f$tau2[1] / f$tau2[2]); a <- f$beta[1] + b * f$beta[2]
fpr <- auditc$FP / (auditc$FP + auditc$TN); lo <- min(fpr); hi <- max(fpr)
mada_auc <- function(s) { n <- length(s); (s[1] / 2 + sum(s[2:(n - 1)]) + s[n] / 2) / n }
rg <- function(t) plogis(a + b * qlogis(t))
key <- "rg auditc"
out(key, "auc_exact", fmt(line_area(a, b, 0, 1)))
out(key, "auc_mada_formula", fmt(mada_auc(rg(1:99 / 100))))
out(key, "fpr_low", fmt(lo)); out(key, "fpr_high", fmt(hi))
p <- line_area(a, b, lo, hi)
out(key, "pauc", fmt(p)); out(key, "pauc_normalised", fmt(p / (hi - lo)))
out(key, "pauc_mada_formula", fmt(mada_auc(rg(seq(max(0.01, lo), min(0.99, hi), length.out = 99)))))

## 5. The real example, ultrasound cohorts of dta_examples/alnm_dl/cohorts.csv (FP = 0 in one cohort: 0.5 in every
##    cell of every cohort). Reitsma REML with rho fixed at 0 (rma.mv struct = "DIAG"): tau2 of logit sens is ~0
##    here too, so its Rutter-Gatsonis line is flat (AUC = its sensitivity) and nodescope does not use it; the
##    alternative SROC is then Moses-Littenberg (block 3's formulas), whose AUC and partial AUC are printed last.
al <- read.csv(file.path(ddir, "alnm_dl", "cohorts.csv"))
us <- al[al$modality == "US", ]
c <- cc_all(us)
es <- escalc(measure = "PLO", xi = TP, mi = FN, data = c, add = 0)
ep <- escalc(measure = "PLO", xi = TN, mi = FP, data = c, add = 0)
k <- nrow(c)
long <- data.frame(study = rep(1:k, each = 2), outcome = factor(rep(c("sens", "spec"), k)),
                   yi = as.vector(rbind(es$yi, ep$yi)), vi = as.vector(rbind(es$vi, ep$vi)))
f <- rma.mv(yi, vi, mods = ~ outcome - 1, random = ~ outcome | study, struct = "DIAG", data = long,
            method = "REML", control = list(rel.tol = 1e-10, iter.max = 10000, eval.max = 10000))
b <- sqrt(f$tau2[1] / f$tau2[2]); a <- f$beta[1] + b * f$beta[2]
fpr <- us$FP / (us$FP + us$TN); lo <- min(fpr); hi <- max(fpr)
key <- "rho0 alnm_us"
out(key, "mu_sens", fmt(f$beta[1])); out(key, "mu_spec", fmt(f$beta[2]))
out(key, "tau2_sens", fmt(f$tau2[1])); out(key, "tau2_spec", fmt(f$tau2[2]))
out(key, "auc", fmt(line_area(a, b, 0, 1)))
out(key, "fpr_low", fmt(lo)); out(key, "fpr_high", fmt(hi)); out(key, "pauc", fmt(line_area(a, b, lo, hi)))
ls <- log(c$TP / c$FN); lf <- log(c$FP / c$TN)
fit <- lm(I(ls - lf) ~ I(ls + lf)); A <- unname(coef(fit)[1]); B <- unname(coef(fit)[2])
a <- A / (1 - B); b <- (1 + B) / (1 - B)
key <- "moses alnm_us"
out(key, "A", fmt(A)); out(key, "B", fmt(B)); out(key, "auc", fmt(line_area(a, b, 0, 1)))
out(key, "pauc", fmt(line_area(a, b, lo, hi)))

## 6. The rho = 0 Reitsma alternative where both variances are positive: AuditC, rma.mv(struct = "DIAG"), REML,
##    0.5 in every cell of every study; its Rutter-Gatsonis AUC and partial AUC over the observed FPR range.
c <- cc_all(auditc)
es <- escalc(measure = "PLO", xi = TP, mi = FN, data = c, add = 0)
ep <- escalc(measure = "PLO", xi = TN, mi = FP, data = c, add = 0)
k <- nrow(c)
long <- data.frame(study = rep(1:k, each = 2), outcome = factor(rep(c("sens", "spec"), k)),
                   yi = as.vector(rbind(es$yi, ep$yi)), vi = as.vector(rbind(es$vi, ep$vi)))
f <- rma.mv(yi, vi, mods = ~ outcome - 1, random = ~ outcome | study, struct = "DIAG", data = long,
            method = "REML", control = list(rel.tol = 1e-10, iter.max = 10000, eval.max = 10000))
b <- sqrt(f$tau2[1] / f$tau2[2]); a <- f$beta[1] + b * f$beta[2]
fpr <- auditc$FP / (auditc$FP + auditc$TN); lo <- min(fpr); hi <- max(fpr)
key <- "rho0 auditc"
out(key, "tau2_sens", fmt(f$tau2[1])); out(key, "tau2_spec", fmt(f$tau2[2]))
out(key, "auc", fmt(line_area(a, b, 0, 1))); out(key, "pauc", fmt(line_area(a, b, lo, hi)))

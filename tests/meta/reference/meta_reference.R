# Reference values for tests/meta (nodescope.meta) from R: metafor (univariate and bivariate normal models) and
# lme4 (bivariate binomial GLMM), on the example data of mada 0.5.12 exported to ../shared/data/dta_examples.
# Run from the repository root:
#   Rscript tests/meta/reference/meta_reference.R > tests/meta/reference/meta_reference.out
# Output lines: <block> <data set> <quantity> <value>, values with 10 significant digits.
suppressMessages({library(metafor); library(lme4)})
args <- commandArgs(trailingOnly = TRUE)
ddir <- if (length(args)) args[1] else "../shared/data/dta_examples"
rd <- function(nm) read.csv(file.path(ddir, paste0(nm, ".csv")))
out <- function(...) cat(paste(...), "\n")
fmt <- function(x) format(x, digits = 10)
cat("# R", R.version$major, R.version$minor, "metafor", as.character(packageVersion("metafor")),
    "lme4", as.character(packageVersion("lme4")), "\n")

## 1. Univariate random-effects pooling: metafor::rma(yi, vi, method = "DL"/"REML").
## Correction: 0.5 added to all four cells of cohorts with a zero cell (escalc's add = 1/2, to = "only0").
cc_only0 <- function(d) { z <- apply(d[, c("TP","FN","FP","TN")] == 0, 1, any); a <- ifelse(z, 0.5, 0)
  with(d, data.frame(TP = TP + a, FN = FN + a, FP = FP + a, TN = TN + a)) }
measures <- function(c) list(
  log_dor = list(y = log(c$TP * c$TN / (c$FP * c$FN)), v = 1/c$TP + 1/c$FN + 1/c$FP + 1/c$TN),
  logit_sens = list(y = log(c$TP / c$FN), v = 1/c$TP + 1/c$FN),
  logit_spec = list(y = log(c$TN / c$FP), v = 1/c$TN + 1/c$FP),
  log_lr_pos = list(y = log((c$TP/(c$TP+c$FN)) / (c$FP/(c$FP+c$TN))), v = 1/c$TP - 1/(c$TP+c$FN) + 1/c$FP - 1/(c$FP+c$TN)),
  log_lr_neg = list(y = log((c$FN/(c$TP+c$FN)) / (c$TN/(c$FP+c$TN))), v = 1/c$FN - 1/(c$TP+c$FN) + 1/c$TN - 1/(c$FP+c$TN)))
for (nm in c("AuditC", "Dementia", "skin_tests")) {
  ms <- measures(cc_only0(rd(nm)))
  for (m in names(ms)) for (meth in c("DL", "REML")) {
    f <- rma(ms[[m]]$y, ms[[m]]$v, method = meth, control = list(threshold = 1e-12, maxiter = 10000))
    p <- predict(f)
    key <- paste("uni", nm, m, meth)
    out(key, "mu", fmt(coef(f))); out(key, "se", fmt(f$se)); out(key, "tau2", fmt(f$tau2))
    out(key, "Q", fmt(f$QE)); out(key, "I2", fmt(f$I2)); out(key, "pi_lb", fmt(p$pi.lb)); out(key, "pi_ub", fmt(p$pi.ub))
  }
}
# the default escalc convention equals the rule above for the log DOR:
es <- escalc("OR", ai = TP, bi = FN, ci = FP, di = TN, data = rd("AuditC"))
out("escalc AuditC log_dor_sum", fmt(sum(es$yi)), "var_sum", fmt(sum(es$vi)))

## 2. Bivariate normal model (Reitsma): metafor::rma.mv(yi, vi, mods = ~ 0 + outcome,
##    random = ~ outcome | study, struct = "UN", method = "REML"/"ML") on logit(sens), logit(spec).
## Correction as mada::reitsma's default (correction.control = "all"): if any cell of any cohort is 0,
## 0.5 is added to all cells of all cohorts.
long_logits <- function(d, covs = NULL) {
  a <- if (any(d[, c("TP","FN","FP","TN")] == 0)) 0.5 else 0
  TP <- d$TP + a; FN <- d$FN + a; FP <- d$FP + a; TN <- d$TN + a
  x <- data.frame(study = rep(d$study, 2), outcome = factor(rep(c("sens", "spec"), each = nrow(d))),
                  yi = c(log(TP/FN), log(TN/FP)), vi = c(1/TP + 1/FN, 1/TN + 1/FP))
  for (cv in covs) x[[cv]] <- rep(d[[cv]], 2)
  x }
ctl <- list(rel.tol = 1e-10, iter.max = 10000, eval.max = 10000)
for (nm in c("AuditC", "Dementia", "skin_tests", "SAQ")) for (meth in c("REML", "ML")) {
  f <- rma.mv(yi, vi, mods = ~ 0 + outcome, random = ~ outcome | study, struct = "UN", data = long_logits(rd(nm)),
              method = meth, control = ctl)
  key <- paste("reitsma", nm, meth)
  out(key, "mu_sens", fmt(coef(f)[1])); out(key, "mu_spec", fmt(coef(f)[2]))
  out(key, "se_sens", fmt(f$se[1])); out(key, "se_spec", fmt(f$se[2]))
  out(key, "tau2_sens", fmt(f$tau2[1])); out(key, "tau2_spec", fmt(f$tau2[2])); out(key, "rho", fmt(f$rho))
  out(key, "loglik", fmt(as.numeric(logLik(f))))
}
# Meta-regression by type (smoking, first result per study as in mada's vignette), ML, and the LRT.
sm <- rd("smoking"); sm1 <- sm[sm$result_id == 1, ]
f1 <- rma.mv(yi, vi, mods = ~ 0 + outcome + outcome:type, random = ~ outcome | study, struct = "UN",
             data = long_logits(sm1, "type"), method = "ML", control = ctl)
f0 <- rma.mv(yi, vi, mods = ~ 0 + outcome, random = ~ outcome | study, struct = "UN",
             data = long_logits(sm1, "type"), method = "ML", control = ctl)
cf <- coef(f1); se <- f1$se
for (i in seq_along(cf)) out("reitsma_reg smoking1", names(cf)[i], fmt(cf[i]), fmt(se[i]))
out("reitsma_reg smoking1 tau2", fmt(f1$tau2[1]), fmt(f1$tau2[2]), "rho", fmt(f1$rho))
out("reitsma_reg smoking1 loglik", fmt(as.numeric(logLik(f1))), "null", fmt(as.numeric(logLik(f0))),
    "LRT", fmt(2 * (as.numeric(logLik(f1)) - as.numeric(logLik(f0)))))

## 3. Bivariate binomial GLMM: lme4::glmer(cbind(events, n - events) ~ 0 + sens + spec
##    + (0 + sens + spec | study), family = binomial), nAGQ = 1 (Laplace).
## tolPwrss = 1e-13: lme4's default PIRLS tolerance (1e-7) leaves the conditional modes slightly short of the
## maximum, which moves the estimates by up to ~1.5e-3 (printed as 'default' for comparison).
long_counts <- function(d) rbind(
  data.frame(study = d$study, events = d$TP, n = d$TP + d$FN, sens = 1, spec = 0, type = d$type_),
  data.frame(study = d$study, events = d$TN, n = d$TN + d$FP, sens = 0, spec = 1, type = d$type_))
tight <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10), tolPwrss = 1e-13)
for (nm in c("AuditC", "Dementia", "IAQ", "SAQ", "skin_tests", "smoking")) {
  d <- rd(nm); d$type_ <- if (is.null(d$type)) "x" else d$type
  for (ctl_name in c("tight", "default")) {
    t0 <- proc.time()[["elapsed"]]
    f <- if (ctl_name == "tight") glmer(cbind(events, n - events) ~ 0 + sens + spec + (0 + sens + spec | study),
                                        data = long_counts(d), family = binomial, control = tight)
         else suppressWarnings(glmer(cbind(events, n - events) ~ 0 + sens + spec + (0 + sens + spec | study),
                                     data = long_counts(d), family = binomial))
    el <- proc.time()[["elapsed"]] - t0
    vc <- VarCorr(f)$study
    key <- paste("glmm", nm, ctl_name)
    out(key, "mu_sens", fmt(fixef(f)[1])); out(key, "mu_spec", fmt(fixef(f)[2]))
    out(key, "se_sens", fmt(sqrt(vcov(f)[1, 1]))); out(key, "se_spec", fmt(sqrt(vcov(f)[2, 2])))
    out(key, "sd_sens", fmt(attr(vc, "stddev")[1])); out(key, "sd_spec", fmt(attr(vc, "stddev")[2]))
    out(key, "rho", fmt(attr(vc, "correlation")[1, 2])); out(key, "loglik", fmt(as.numeric(logLik(f))))
    out(key, "seconds", fmt(el))
  }
}
# GLMM meta-regression on type (smoking, all rows) and LRT against the intercept-only model.
d <- rd("smoking"); d$type_ <- d$type; L <- long_counts(d); L$saq <- as.numeric(L$type == "SAQ")
g1 <- glmer(cbind(events, n - events) ~ 0 + sens + spec + sens:saq + spec:saq + (0 + sens + spec | study),
            data = L, family = binomial, control = tight)
g0 <- glmer(cbind(events, n - events) ~ 0 + sens + spec + (0 + sens + spec | study), data = L, family = binomial,
            control = tight)
cf <- fixef(g1); se <- sqrt(diag(as.matrix(vcov(g1))))
for (i in seq_along(cf)) out("glmm_reg smoking", names(cf)[i], fmt(cf[i]), fmt(se[i]))
out("glmm_reg smoking loglik", fmt(as.numeric(logLik(g1))), "null", fmt(as.numeric(logLik(g0))),
    "LRT", fmt(2 * (as.numeric(logLik(g1)) - as.numeric(logLik(g0)))))

## 4. Deeks' test: lm(lnDOR ~ I(1/sqrt(ESS)), weights = ESS), 0.5 added to cells of cohorts with a zero cell.
for (nm in c("AuditC", "Dementia", "smoking")) {
  d <- rd(nm); c <- cc_only0(d)
  lndor <- log(c$TP * c$TN / (c$FP * c$FN)); n1 <- d$TP + d$FN; n0 <- d$FP + d$TN; ess <- 4 * n1 * n0 / (n1 + n0)
  s <- summary(lm(lndor ~ I(1/sqrt(ess)), weights = ess))$coefficients
  out("deeks", nm, "intercept", fmt(s[1, 1]), "slope", fmt(s[2, 1]), "slope_se", fmt(s[2, 2]), "p", fmt(s[2, 4]))
}

# Reference values for the statistics API 1.0 of nodescope.meta (issue 15): Q-profile and profile-likelihood
# intervals of between-cohort variances, logLik/AIC/BIC, the (sens, FPR) parametrisation of mada, and a per-study
# table like mada::madad. metafor and lme4 are installed; mada is not, so madad's columns are computed here from
# mada's documented formulas in base R (Wilson score interval = prop.test(correct = FALSE)$conf.int; log-method
# intervals of LR+, LR-, DOR), and mada::reitsma's (sens, FPR) model is fitted with metafor::rma.mv on
# (logit sens, logit FPR), which is the model reitsma() fits.
# Run from the repository root:
#   Rscript tests/meta/reference/meta_results15.R > tests/meta/reference/meta_results15.out
# Output lines: <block> <data set> <quantity> <value(s)>, values with 10 significant digits. Data: the example data of
# mada 0.5.12 (AuditC, Dementia, skin_tests; the same counts are inline in tests/meta/_dta_data.py).
suppressMessages({library(metafor); library(lme4)})
args <- commandArgs(trailingOnly = TRUE)
ddir <- if (length(args)) args[1] else "../shared/data/dta_examples"
rd <- function(nm) read.csv(file.path(ddir, paste0(nm, ".csv")))
out <- function(...) cat(paste(...), "\n")
fmt <- function(x) paste(format(x, digits = 10), collapse = " ")
cat("# R", R.version$major, R.version$minor, "metafor", as.character(packageVersion("metafor")),
    "lme4", as.character(packageVersion("lme4")), "\n")
cc_only0 <- function(d) { z <- apply(d[, c("TP","FN","FP","TN")] == 0, 1, any); a <- ifelse(z, 0.5, 0)
  with(d, data.frame(TP = TP + a, FN = FN + a, FP = FP + a, TN = TN + a)) }
cc_all <- function(d) { a <- if (any(d[, c("TP","FN","FP","TN")] == 0)) 0.5 else 0
  with(d, data.frame(TP = TP + a, FN = FN + a, FP = FP + a, TN = TN + a)) }

## 1. Univariate: Q-profile CIs of tau2, tau, I2, H2 (metafor::confint(rma), its default method) and fit statistics
##    (logLik, AIC, BIC: metafor's fitstats; REML for REML fits, ML otherwise). Correction as escalc(to = "only0").
for (nm in c("AuditC", "Dementia", "skin_tests")) {
  c <- cc_only0(rd(nm))
  ms <- list(logit_sens = list(y = log(c$TP / c$FN), v = 1/c$TP + 1/c$FN),
             logit_spec = list(y = log(c$TN / c$FP), v = 1/c$TN + 1/c$FP),
             log_dor = list(y = log(c$TP * c$TN / (c$FP * c$FN)), v = 1/c$TP + 1/c$FN + 1/c$FP + 1/c$TN))
  for (m in names(ms)) for (meth in c("REML", "DL", "ML")) {
    f <- rma(ms[[m]]$y, ms[[m]]$v, method = meth, control = list(threshold = 1e-12, maxiter = 10000))
    key <- paste("qprofile", nm, m, meth)
    if (meth != "ML") {
      ci <- confint(f, control = list(tol = 1e-12))$random
      out(key, "tau2", fmt(ci["tau^2", ])); out(key, "I2", fmt(ci["I^2(%)", ])); out(key, "H2", fmt(ci["H^2", ]))
    }
    fs <- fitstats(f)
    out(key, "loglik", fmt(fs[1])); out(key, "aic", fmt(fs[3])); out(key, "bic", fmt(fs[4]))
  }
}

## 2. Reitsma (bivariate normal, mada's correction.control = "all"): rma.mv(struct = "UN") on (logit sens, logit spec)
##    and on mada's (logit sens, logit FPR). Profile-likelihood CIs of tau2 (confint(rma.mv)), logLik/AIC/BIC,
##    coefficients with SE, z, p and vcov.
long_logits <- function(d, fpr = FALSE) {
  c <- cc_all(d); s <- if (fpr) -1 else 1
  data.frame(study = rep(d$study, 2), outcome = factor(rep(c("sens", "spec"), each = nrow(d))),
             yi = c(log(c$TP/c$FN), s * log(c$TN/c$FP)), vi = c(1/c$TP + 1/c$FN, 1/c$TN + 1/c$FP)) }
ctl <- list(rel.tol = 1e-10, iter.max = 10000, eval.max = 10000)
for (nm in c("AuditC", "Dementia", "skin_tests")) for (meth in c("REML", "ML")) {
  d <- rd(nm)
  f <- rma.mv(yi, vi, mods = ~ 0 + outcome, random = ~ outcome | study, struct = "UN", data = long_logits(d),
              method = meth, control = ctl)
  key <- paste("reitsma", nm, meth)
  fs <- fitstats(f)
  out(key, "loglik", fmt(fs[1])); out(key, "aic", fmt(fs[3])); out(key, "bic", fmt(fs[4]))
  for (j in 1:2) {
    ci <- confint(f, tau2 = j, control = list(tol = 1e-12))$random
    out(key, paste0("tau2_", c("sens", "spec")[j]), fmt(ci[1, ]))
  }
  g <- rma.mv(yi, vi, mods = ~ 0 + outcome, random = ~ outcome | study, struct = "UN",
              data = long_logits(d, fpr = TRUE), method = meth, control = ctl)
  key <- paste("reitsma_fpr", nm, meth)
  out(key, "mu", fmt(coef(g))); out(key, "se", fmt(g$se)); out(key, "z", fmt(g$zval)); out(key, "p", fmt(g$pval))
  out(key, "vcov", fmt(as.vector(vcov(g)))); out(key, "tau2", fmt(g$tau2)); out(key, "rho", fmt(g$rho))
}

## 3. GLMM (lme4::glmer, Laplace, tight control as in meta_reference.R): logLik (binomial constants included), AIC,
##    BIC, and profile-likelihood CIs of the SDs (confint(method = "profile")), squared to tau2.
long_counts <- function(d) rbind(
  data.frame(study = d$study, events = d$TP, n = d$TP + d$FN, sens = 1, spec = 0),
  data.frame(study = d$study, events = d$TN, n = d$TN + d$FP, sens = 0, spec = 1))
tight <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-10), tolPwrss = 1e-13)
for (nm in c("skin_tests", "AuditC")) {
  g <- glmer(cbind(events, n - events) ~ 0 + sens + spec + (0 + sens + spec | study), data = long_counts(rd(nm)),
             family = binomial, control = tight)
  key <- paste("glmm", nm)
  out(key, "loglik", fmt(as.numeric(logLik(g)))); out(key, "aic", fmt(AIC(g))); out(key, "bic", fmt(BIC(g)))
  pr <- profile(g, which = "theta_", signames = FALSE, delta = 0.05, maxpts = 200)
  ci <- confint(pr, level = 0.95)
  out(key, "sd_sens_ci", fmt(ci[1, ])); out(key, "sd_spec_ci", fmt(ci[3, ]))
}

## 4. madad-style per-study table (mada's formulas in base R; correction.control = "all" as madad's default):
##    Wilson (prop.test(correct = FALSE)) for sens, spec, FPR on the corrected counts; LR+, LR-, DOR log-method.
wilson <- function(x, n, level = 0.95) { z <- qnorm(1 - (1 - level) / 2); p <- x / n
  ctr <- (p + z^2 / (2 * n)) / (1 + z^2 / n); hw <- z * sqrt(p * (1 - p) / n + z^2 / (4 * n^2)) / (1 + z^2 / n)
  cbind(ctr - hw, ctr + hw) }
stopifnot(isTRUE(all.equal(as.vector(wilson(47, 56)), as.vector(prop.test(47, 56, correct = FALSE)$conf.int),
                           tolerance = 1e-12)))
for (nm in c("AuditC", "Dementia", "skin_tests")) {
  c <- cc_all(rd(nm)); z <- qnorm(0.975)
  sens <- c$TP / (c$TP + c$FN); spec <- c$TN / (c$TN + c$FP); fpr <- 1 - spec
  ws <- wilson(c$TP, c$TP + c$FN); wp <- wilson(c$TN, c$TN + c$FP); wf <- wilson(c$FP, c$TN + c$FP)
  lrp <- sens / fpr; slrp <- sqrt(1/c$TP - 1/(c$TP + c$FN) + 1/c$FP - 1/(c$FP + c$TN))
  lrn <- (1 - sens) / spec; slrn <- sqrt(1/c$FN - 1/(c$TP + c$FN) + 1/c$TN - 1/(c$FP + c$TN))
  dor <- c$TP * c$TN / (c$FP * c$FN); sdor <- sqrt(1/c$TP + 1/c$FN + 1/c$FP + 1/c$TN)
  for (i in seq_len(nrow(c))) out("madad", nm, i, fmt(c(sens[i], ws[i, ], spec[i], wp[i, ], fpr[i], wf[i, ],
      lrp[i], exp(log(lrp[i]) + c(-1, 1) * z * slrp[i]), lrn[i], exp(log(lrn[i]) + c(-1, 1) * z * slrn[i]),
      dor[i], exp(log(dor[i]) + c(-1, 1) * z * sdor[i]))))
}

# R side of docs/r-equivalents.md (executed as a test by tests/test_docs_r_equivalents.py). Run from this folder:
#   Rscript r_equivalents.R > r_equivalents.out 2>&1
# pROC and rms are installed. ResourceSelection and dcurves are not (no internet): hoslem.test is its published
# code pasted below; dcurves::dca's net benefit is its documented formula NB = TP/n - FP/n * pt / (1 - pt).
# MRMCaov is not installed either: its Van Dyke numbers in the page are quoted from the MRMCaov JSS manuscript
# (brian-j-smith/MRMCaov, docs/jss/MRMCaov.tex), as in tests/evaluation/test_mrmc.py.
suppressMessages({library(pROC); library(rms)})
options(digits = 15)
y  <- c(0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 1)
s1 <- c(0.3, 2.6, 1.7, 1.7, 0.6, -0.2, -0.3, -1.6, 1.4, 1.9, 1.4, 0.6, 0.1, 0.4, -0.4, -1.1, 0.7, 0.5, -0.1, 0.4,
        1.5, -0.1, 1.5, 2.0)
s2 <- c(0.6, 1.0, -0.3, -0.3, 0.2, 0.0, -0.7, 0.5, 1.1, 1.9, 1.6, -0.5, 0.9, 0.6, -1.3, -0.1, 1.3, 1.1, 0.8, -0.9,
        0.7, -0.5, 0.9, 1.3)
p  <- c(0.53, 0.966, 0.889, 0.889, 0.632, 0.359, 0.327, 0.073, 0.84, 0.914, 0.84, 0.632, 0.46, 0.565, 0.297, 0.137,
        0.664, 0.599, 0.392, 0.565, 0.858, 0.392, 0.858, 0.924)

cat("## pROC roc / auc / ci.auc / var\n")
r1 <- roc(y, s1, levels = c(0, 1), direction = "<", quiet = TRUE)
r2 <- roc(y, s2, levels = c(0, 1), direction = "<", quiet = TRUE)
print(c(auc = as.numeric(auc(r1)), var = var(r1), ci.auc(r1)[c(1, 3)]))
cat("## pROC roc.test paired DeLong\n")
t <- roc.test(r1, r2, method = "delong", paired = TRUE)
print(c(Z = unname(t$statistic), p = t$p.value, ci = t$conf.int[1:2]))
cat("## pROC coords best youden\n")
print(coords(r1, "best", best.method = "youden", ret = c("threshold", "sensitivity", "specificity", "tp", "fp"),
             transpose = FALSE))
cat("## rms val.prob\n")
print(val.prob(p, y, pl = FALSE))
cat("## rms lrm(y ~ qlogis(p)): the recalibration fit behind val.prob's Intercept and Slope\n")
f <- lrm(y ~ qlogis(p))
print(cbind(coef = coef(f), se = sqrt(diag(vcov(f)))))
cat("## prop.test / binom.test on sensitivity at s1 >= 0.5\n")
tp <- sum(s1 >= 0.5 & y == 1); pos <- sum(y == 1)
cat("tp =", tp, " pos =", pos, "\n")
print(rbind(wilson_cc = prop.test(tp, pos)$conf.int[1:2], wilson = prop.test(tp, pos, correct = FALSE)$conf.int[1:2],
            clopper_pearson = binom.test(tp, pos)$conf.int[1:2]))
cat("## ResourceSelection::hoslem.test(y, p, g = 5) (its code)\n")
qq <- unique(quantile(p, probs = seq(0, 1, 1 / 5)))
cutyhat <- cut(p, breaks = qq, include.lowest = TRUE)
observed <- xtabs(cbind(y0 = 1 - y, y1 = y) ~ cutyhat)
expected <- xtabs(cbind(yhat0 = 1 - p, yhat1 = p) ~ cutyhat)
print(cbind(observed, expected))
chisq <- sum((observed - expected)^2 / expected)
print(c(X2 = chisq, df = 3, p = 1 - pchisq(chisq, 3)))
cat("## dcurves::dca formula\n")
for (pt in c(0.2, 0.4, 0.6)) {
  tpc <- sum(p >= pt & y == 1); fpc <- sum(p >= pt & y == 0)
  cat(sprintf("pt=%.1f tp=%d fp=%d net_benefit=%.15f\n", pt, tpc, fpc, tpc / 24 - fpc / 24 * pt / (1 - pt)))
}
cat("## mcnemar.test on correct calls (s1 >= 0.5 vs s2 >= 0.5)\n")
ca <- (s1 >= 0.5) == (y == 1); cb <- (s2 >= 0.5) == (y == 1)
m <- mcnemar.test(table(factor(ca, c(TRUE, FALSE)), factor(cb, c(TRUE, FALSE))))
print(table(factor(ca, c(TRUE, FALSE)), factor(cb, c(TRUE, FALSE))))
print(c(X2 = unname(m$statistic), p = m$p.value))

# Reference values for tests/evaluation (nodescope). Run from this folder:
#   Rscript reference.R > reference_output.txt 2>&1
# R packages: pROC (DeLong AUC/CI, roc.test), rms (val.prob). Hosmer-Lemeshow is computed with the code of
# ResourceSelection::hoslem.test (g = 10), pasted below because that package is not installed here.
suppressMessages({library(pROC); library(rms)})
options(digits = 15)
cat("R:", R.version.string, " pROC:", as.character(packageVersion("pROC")), " rms:", as.character(packageVersion("rms")), "\n")

a <- read.csv("data_binary.csv")
b <- read.csv("data_unpaired.csv")

cat("\n## 1. AUC and DeLong CI (levels = c(0, 1), direction = '<': higher score = positive)\n")
r1 <- roc(a$y, a$s1, levels = c(0, 1), direction = "<", quiet = TRUE)
r2 <- roc(a$y, a$s2, levels = c(0, 1), direction = "<", quiet = TRUE)
rb <- roc(b$y, b$s, levels = c(0, 1), direction = "<", quiet = TRUE)
for (nm in c("r1", "r2", "rb")) {
  r <- get(nm)
  ci <- ci.auc(r, method = "delong", conf.level = 0.95)
  cat(nm, ": auc =", as.numeric(auc(r)), " var =", var(r, method = "delong"),
      " ci.auc(method='delong') =", ci[1], ci[3], "\n")
}
cat("ci.auc(r1, conf.level = 0.90):", ci.auc(r1, method = "delong", conf.level = 0.90)[c(1, 3)], "\n")
cat("cov(r1, r2, method = 'delong') =", cov(r1, r2, method = "delong"), "\n")

cat("\n## 2. roc.test paired DeLong (r1 vs r2)\n")
t <- roc.test(r1, r2, method = "delong", paired = TRUE)
cat("Z =", t$statistic, " p =", t$p.value, " conf.int =", t$conf.int, "\n")

cat("\n## 3. roc.test unpaired DeLong (r1 vs rb)\n")
t <- roc.test(r1, rb, method = "delong", paired = FALSE)
cat("D =", t$statistic, " df =", t$parameter, " p =", t$p.value, "\n")

cat("\n## 4. All scores tied\n")
rt <- roc(a$y, rep(0.5, nrow(a)), levels = c(0, 1), direction = "<", quiet = TRUE)
cat("auc =", as.numeric(auc(rt)), " var =", var(rt), " ci =", ci.auc(rt, method = "delong")[c(1, 3)], "\n")

cat("\n## 5. rms::val.prob(p, y, pl = FALSE)\n")
v <- val.prob(a$p, a$y, pl = FALSE)
print(v)

cat("\n## 6. Calibration intercept (slope fixed at 1) and slope, glm binomial, Wald CI (confint.default)\n")
lp <- qlogis(a$p)
f0 <- glm(a$y ~ 1 + offset(lp), family = binomial)
f1 <- glm(a$y ~ lp, family = binomial)
cat("intercept =", coef(f0), " ci =", confint.default(f0), "\n")
cat("slope =", coef(f1)[2], " ci =", confint.default(f1)[2, ], " joint intercept =", coef(f1)[1], "\n")
cat("brier =", mean((a$p - a$y)^2), "\n")

cat("\n## 7. Hosmer-Lemeshow, code of ResourceSelection::hoslem.test(y, p, g = 10)\n")
hoslem <- function(x, yhat, g = 10) {
  qq <- unique(quantile(yhat, probs = seq(0, 1, 1 / g)))
  cutyhat <- cut(yhat, breaks = qq, include.lowest = TRUE)
  observed <- xtabs(cbind(y0 = 1 - x, y1 = x) ~ cutyhat)
  expected <- xtabs(cbind(yhat0 = 1 - yhat, yhat1 = yhat) ~ cutyhat)
  chisq <- sum((observed - expected)^2 / expected)
  PVAL <- 1 - pchisq(chisq, g - 2)
  list(statistic = chisq, df = g - 2, p.value = PVAL, observed = observed)
}
h <- hoslem(a$y, a$p, g = 10)
cat("X2 =", h$statistic, " df =", h$df, " p =", h$p.value, "\n")
print(h$observed)

cat("\n## 8. Proportion intervals: 17/23 and 0/12\n")
for (k_n in list(c(17, 23), c(0, 12), c(12, 12))) {
  k <- k_n[1]; n <- k_n[2]
  w <- prop.test(k, n, correct = FALSE)$conf.int
  cp <- binom.test(k, n)$conf.int
  cat(k, "/", n, ": wilson (prop.test correct=FALSE) =", w, " clopper-pearson (binom.test) =", cp, "\n")
}

cat("\n## 9. McNemar on the table [[11, 9], [2, 6]] (both correct, only a, only b, both wrong)\n")
tab <- matrix(c(11, 2, 9, 6), nrow = 2)
cat("mcnemar.test correct=TRUE: X2 =", mcnemar.test(tab, correct = TRUE)$statistic,
    " p =", mcnemar.test(tab, correct = TRUE)$p.value, "\n")
cat("mcnemar.test correct=FALSE: X2 =", mcnemar.test(tab, correct = FALSE)$statistic,
    " p =", mcnemar.test(tab, correct = FALSE)$p.value, "\n")
cat("exact: binom.test(9, 11) p =", binom.test(9, 11)$p.value, "\n")

cat("\n## 10. pROC coords at threshold 0.35 on s1 (score >= t positive), youden best threshold\n")
tt <- 0.35
tp <- sum(a$s1 >= tt & a$y == 1); fn <- sum(a$s1 < tt & a$y == 1)
fp <- sum(a$s1 >= tt & a$y == 0); tn <- sum(a$s1 < tt & a$y == 0)
cat("tp fp fn tn =", tp, fp, fn, tn, "\n")
print(coords(r1, "best", best.method = "youden", ret = c("threshold", "sensitivity", "specificity")))

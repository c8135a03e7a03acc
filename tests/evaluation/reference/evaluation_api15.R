# Reference values for tests/evaluation/test_api15.py and docs/r-equivalents.md (issue 15, evaluation side).
# Run from this folder:  Rscript evaluation_api15.R > evaluation_api15.out 2>&1
# Installed: pROC, rms. Not installed (no internet): ResourceSelection, dcurves. What they would give is computed
# from their documented formulas in base R below (Hosmer-Lemeshow as ResourceSelection::hoslem.test, net benefit
# as dcurves::dca: NB = TP/n - FP/n * pt/(1 - pt)), and says so.
suppressMessages({library(pROC); library(rms)})
options(digits = 15)
cat("R:", R.version.string, " pROC:", as.character(packageVersion("pROC")), " rms:", as.character(packageVersion("rms")), "\n")
a <- read.csv("data_binary.csv")

cat("\n## 1. rms::val.prob(p, y, pl = FALSE), all 18 indices\n")
v <- val.prob(a$p, a$y, pl = FALSE)
print(v)
cat("\n## 1b. val.prob by hand: D:p (1 df; this rms prints NA), SEs of the recalibration fit, CITL with slope 1\n")
lg <- qlogis(a$p); n <- length(a$y)
L0 <- -2 * sum(dbinom(a$y, 1, mean(a$y), log = TRUE))
L01 <- -2 * sum(a$y * lg - log(1 + exp(lg)))
lr <- L0 - L01
cat("D:Chi-sq =", lr, " D:p (pchisq 1 df) =", 1 - pchisq(lr, 1), " R2 =", (1 - exp(-lr / n)) / (1 - exp(-L0 / n)), "\n")
f.recal <- lrm.fit(lg, a$y)
cat("recalibration intercept =", coef(f.recal)[1], " se =", sqrt(diag(vcov(f.recal)))[1], "\n")
cat("recalibration slope =", coef(f.recal)[2], " se =", sqrt(diag(vcov(f.recal)))[2], "\n")
f0 <- glm(a$y ~ 1 + offset(lg), family = binomial)
cat("calibration-in-the-large (slope fixed at 1) =", coef(f0), " se =", sqrt(vcov(f0))[1, 1], "\n")
r <- roc(a$y, a$p, levels = c(0, 1), direction = "<", quiet = TRUE)
cat("C se (pROC DeLong, sqrt(var)) =", sqrt(var(r)), " Dxy se = 2 * C se =", 2 * sqrt(var(r)), "\n")

cat("\n## 2. prop.test(x, n)$conf.int (Wilson with continuity correction, default p = 0.5, correct = TRUE)\n")
for (xn in list(c(7, 20), c(0, 10), c(10, 10), c(27, 30), c(1, 3), c(5, 10), c(12, 25))) {
  ci <- suppressWarnings(prop.test(xn[1], xn[2])$conf.int)
  ci0 <- suppressWarnings(prop.test(xn[1], xn[2], correct = FALSE)$conf.int)
  ci90 <- suppressWarnings(prop.test(xn[1], xn[2], conf.level = 0.9)$conf.int)
  cat(sprintf("x=%d n=%d cc: %.15f %.15f plain: %.15f %.15f cc90: %.15f %.15f\n", xn[1], xn[2], ci[1], ci[2],
              ci0[1], ci0[2], ci90[1], ci90[2]))
}
ci <- binom.test(7, 20)$conf.int
cat(sprintf("binom.test(7, 20) (Clopper-Pearson): %.15f %.15f\n", ci[1], ci[2]))

cat("\n## 3. pROC var() (DeLong) of roc(y, s1)\n")
r1 <- roc(a$y, a$s1, levels = c(0, 1), direction = "<", quiet = TRUE)
cat("auc =", as.numeric(auc(r1)), " var =", var(r1), "\n")

cat("\n## 4. coords(best, youden): every tied optimum (toy data with two tied Youden maxima)\n")
yt <- c(0, 0, 0, 1, 0, 1, 1, 0, 1, 1)
st <- c(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
rt <- roc(yt, st, levels = c(0, 1), direction = "<", quiet = TRUE)
print(coords(rt, "best", best.method = "youden", ret = c("threshold", "sensitivity", "specificity", "tp", "fp", "tn", "fn"),
             transpose = FALSE))
cat("(pROC thresholds are midpoints between scores; nodescope reports the lowest score called positive)\n")

cat("\n## 5. McNemar on accuracy: correct calls of two tests (s1 >= 0, s2 >= 0) on the same cases\n")
ca <- (a$s1 >= 0) == (a$y == 1); cb <- (a$s2 >= 0) == (a$y == 1)
tab <- table(factor(ca, c(TRUE, FALSE)), factor(cb, c(TRUE, FALSE)))
print(tab)
m <- mcnemar.test(tab)
cat("mcnemar.test (corrected): X2 =", m$statistic, " p =", m$p.value, "\n")
m2 <- mcnemar.test(tab, correct = FALSE)
cat("mcnemar.test (correct = FALSE): X2 =", m2$statistic, " p =", m2$p.value, "\n")
b <- tab[1, 2]; c <- tab[2, 1]
cat("exact: binom.test(b, b + c) p =", binom.test(b, b + c)$p.value, "\n")

cat("\n## 6. Hosmer-Lemeshow table (code of ResourceSelection::hoslem.test, g = 10): events and non-events\n")
qq <- unique(quantile(a$p, probs = seq(0, 1, 1 / 10)))
cutyhat <- cut(a$p, breaks = qq, include.lowest = TRUE)
observed <- xtabs(cbind(y0 = 1 - a$y, y1 = a$y) ~ cutyhat)
expected <- xtabs(cbind(yhat0 = 1 - a$p, yhat1 = a$p) ~ cutyhat)
print(cbind(observed, expected))
chisq <- sum((observed - expected)^2 / expected)
cat("X2 =", chisq, " df = 8 p =", 1 - pchisq(chisq, 8), "\n")

cat("\n## 7. Decision curve (formula of dcurves::dca; treat when p >= pt)\n")
for (pt in c(0.1, 0.2, 0.3, 0.4, 0.5)) {
  tp <- sum(a$p >= pt & a$y == 1); fp <- sum(a$p >= pt & a$y == 0)
  nb <- tp / n - fp / n * pt / (1 - pt); nball <- mean(a$y) - (1 - mean(a$y)) * pt / (1 - pt)
  cat(sprintf("pt=%.1f tp=%d fp=%d net_benefit=%.15f treat_all=%.15f\n", pt, tp, fp, nb, nball))
}

cat("\n## 8. val.prob with a p exactly 0 and a p exactly 1 (rows left out of the logistic indices only)\n")
p2 <- a$p; p2[1] <- 0; p2[2] <- 1
print(suppressWarnings(val.prob(p2, a$y, pl = FALSE)))

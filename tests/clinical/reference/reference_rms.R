# Reference values for nodescope.clinical's rms-style logistic models, from R's rms (lrm, anova, summary, lrtest,
# validate, calibrate, nomogram) and Hmisc (rcspline.eval). Run from this folder:
#   Rscript reference_rms.R > reference_rms.out
# It writes the CSV files rms_*.csv read by tests/clinical/test_lrm_reference.py (CI does not run R).
# Versions used: R 4.2, rms 6.5.0, Hmisc (Debian bookworm packages).
suppressPackageStartupMessages(library(rms))
options(digits = 15, width = 200)
cat("R", R.version$major, R.version$minor, " rms", format(packageVersion("rms")), " Hmisc",
    format(packageVersion("Hmisc")), "\n")
d <- read.csv("lrm_data.csv", na.strings = "NA", stringsAsFactors = TRUE)
dd <- datadist(d); options(datadist = "dd")
out <- function(x, file) write.csv(x, file, row.names = TRUE)
fmt <- function(x) formatC(x, digits = 17, format = "g")

# ---- knots and basis (Hmisc rules: n >= 100 quantiles; n < 100 outer knots at the 5th smallest / largest) ----
k <- list(
  age4 = rcspline.eval(d$age, nk = 4, knots.only = TRUE),
  age3 = rcspline.eval(d$age, nk = 3, knots.only = TRUE),
  age5 = rcspline.eval(d$age, nk = 5, knots.only = TRUE),
  age4_first80 = rcspline.eval(d$age[1:80], nk = 4, knots.only = TRUE),
  marker5 = rcspline.eval(d$marker, nk = 5, knots.only = TRUE))
print(k)
kn <- do.call(rbind, lapply(names(k), function(n) data.frame(name = n, i = seq_along(k[[n]]), knot = fmt(k[[n]]))))
write.csv(kn, "rms_knots.csv", row.names = FALSE)
b <- rcspline.eval(d$age, nk = 5, inclx = TRUE)
write.csv(data.frame(age = fmt(d$age), apply(b, 2, fmt)), "rms_basis_age5.csv", row.names = FALSE)

# ---- fit 1: spline, factors, complete cases (8 rows miss marker) ----
f1 <- lrm(y ~ rcs(age, 4) + sex + stage + marker, data = d, x = TRUE, y = TRUE)
print(f1)
write.csv(data.frame(term = names(coef(f1)), coef = fmt(coef(f1)), se = fmt(sqrt(diag(vcov(f1))))),
          "rms_fit1_coef.csv", row.names = FALSE)
st <- f1$stats
write.csv(data.frame(stat = names(st), value = fmt(st)), "rms_fit1_stats.csv", row.names = FALSE)
a1 <- anova(f1)
print(a1)
write.csv(data.frame(row = rownames(a1), chisq = fmt(a1[, "Chi-Square"]), df = a1[, "d.f."], p = fmt(a1[, "P"])),
          "rms_fit1_anova.csv", row.names = FALSE)
s1 <- summary(f1)
print(s1)
s1 <- as.data.frame(unclass(s1))
write.csv(data.frame(row = rownames(s1), apply(s1, 2, fmt)), "rms_fit1_summary.csv", row.names = FALSE)
# likelihood-ratio test of each factor (refit without it on the same complete cases)
# (knots kept where f1 placed them, on all 200 ages, as the Python side keeps the design of the full fit)
cc <- d[complete.cases(d), ]
k4 <- k$age4
full <- lrm(y ~ rcs(age, k4) + sex + stage + marker, data = cc)
lr <- rbind(
  age = lrtest(full, lrm(y ~ sex + stage + marker, data = cc))$stats,
  sex = lrtest(full, lrm(y ~ rcs(age, k4) + stage + marker, data = cc))$stats,
  stage = lrtest(full, lrm(y ~ rcs(age, k4) + sex + marker, data = cc))$stats,
  marker = lrtest(full, lrm(y ~ rcs(age, k4) + sex + stage, data = cc))$stats)
print(lr)
write.csv(data.frame(factor = rownames(lr), chisq = fmt(lr[, 1]), df = lr[, 2], p = fmt(lr[, 3])),
          "rms_fit1_lrtest.csv", row.names = FALSE)

# ---- fit 2: an interaction between a factor and a continuous variable ----
f2 <- lrm(y ~ rcs(age, 4) + sex * marker + stage, data = d, x = TRUE, y = TRUE)
print(f2)
write.csv(data.frame(term = names(coef(f2)), coef = fmt(coef(f2)), se = fmt(sqrt(diag(vcov(f2))))),
          "rms_fit2_coef.csv", row.names = FALSE)
a2 <- anova(f2)
print(a2)
write.csv(data.frame(row = rownames(a2), chisq = fmt(a2[, "Chi-Square"]), df = a2[, "d.f."], p = fmt(a2[, "P"])),
          "rms_fit2_anova.csv", row.names = FALSE)
write.csv(data.frame(stat = names(f2$stats), value = fmt(f2$stats)), "rms_fit2_stats.csv", row.names = FALSE)

# ---- validate and calibrate: the bootstrap indices are exported so the Python side can use the very same ----
# predab.resample draws train <- sample(n, replace = TRUE) once per repetition and nothing else, so replaying the
# seed reproduces them.
B <- 40
n <- nrow(f1$x)
set.seed(101)
v1 <- validate(f1, B = B)
print(v1)
set.seed(101)
idx <- sapply(1:B, function(i) sample(n, replace = TRUE))
write.csv(idx, "rms_boot_indices.csv", row.names = FALSE)
write.csv(data.frame(index = rownames(v1), apply(unclass(v1)[, 1:6], 2, fmt)), "rms_fit1_validate.csv",
          row.names = FALSE)
set.seed(101)
c1 <- calibrate(f1, B = B)
print(c1)
c1m <- unclass(c1)
write.csv(data.frame(apply(c1m[, c("predy", "calibrated.orig", "calibrated.corrected", "optimism")], 2, fmt)),
          "rms_fit1_calibrate.csv", row.names = FALSE)

# ---- nomogram: points per predictor value, the scale and the intercept of the total-points axis ----
nom <- nomogram(f1, fun = plogis, funlabel = "Risk")
print(nom)
info <- attr(nom, "info")
rows <- NULL
for (v in c("age", "sex", "stage", "marker")) {
  rows <- rbind(rows, data.frame(variable = v, value = as.character(nom[[v]][[v]]), points = fmt(nom[[v]]$points)))
}
write.csv(rows, "rms_nomogram_points.csv", row.names = FALSE)
write.csv(data.frame(key = c("sc", "Intercept"), value = fmt(c(info$sc, info$Intercept))),
          "rms_nomogram_scale.csv", row.names = FALSE)

# ---- Firth's penalised likelihood on quasi-completely separated data (brglm2 "AS_mean" = Firth for logit) ----
# flag is 1 only for events with marker > 1, so it separates the outcome quasi-completely.
suppressPackageStartupMessages(library(brglm2))
cat("brglm2", format(packageVersion("brglm2")), "\n")
dc <- d[complete.cases(d), ]
dc$flag <- as.integer(dc$y == 1 & dc$marker > 1)
print(table(dc$flag, dc$y))
ff <- glm(y ~ age + flag + marker, family = binomial, data = dc, method = "brglmFit", type = "AS_mean")
print(summary(ff))
write.csv(data.frame(term = names(coef(ff)), coef = fmt(coef(ff)), se = fmt(sqrt(diag(vcov(ff))))),
          "rms_firth_coef.csv", row.names = FALSE)

# ---- NRI and IDI (Hmisc improveProb, Pencina 2008 formulas) for adding marker to the clinical model ----
old <- lrm(y ~ rcs(age, k4) + sex + stage, data = cc)
new <- lrm(y ~ rcs(age, k4) + sex + stage + marker, data = cc)
p_old <- plogis(old$linear.predictors); p_new <- plogis(new$linear.predictors)
write.csv(data.frame(y = cc$y, p_old = fmt(p_old), p_new = fmt(p_new)), "rms_reclass_probs.csv", row.names = FALSE)
ip <- improveProb(p_old, p_new, cc$y)
print(ip)
# categorical NRI with risk categories < 0.2, 0.2-0.4, >= 0.4: the same formulas on the category indices
cat_old <- cut(p_old, c(-Inf, 0.2, 0.4, Inf), right = FALSE, labels = FALSE)
cat_new <- cut(p_new, c(-Inf, 0.2, 0.4, Inf), right = FALSE, labels = FALSE)
ipc <- improveProb((cat_old - 1) / 2, (cat_new - 1) / 2, cc$y)
print(ipc)
keys <- c("nri", "se.nri", "nri.ev", "se.nri.ev", "nri.ne", "se.nri.ne", "idi", "se.idi")
write.csv(data.frame(key = keys, continuous = fmt(unlist(ip[keys])), categorical = fmt(unlist(ipc[keys]))),
          "rms_reclass.csv", row.names = FALSE)
